"""Confirmations end to end: Book/Reschedule/Cancel through gRPC, the worker, a real SMTP server.

The .ics is parsed back with icalendar; the SMS goes to a Twilio-like emulator.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import httpx
import pytest

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from service.errors import ProviderUnavailable
from service.model import Confirmations
from service.scheduling.app import CalendarApp
from service.scheduling.maintenance import reconcile_pending
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Clock, Tenant, book_request
from tests.notify.conftest import Notify, make_worker, outbox_rows, set_confirmations
from tests.notify.sms_emulator import SmsEmulator
from tests.notify.smtp import SmtpServer, body_of, free_port, invite_of
from tests.scripted import script_provider

LA = "America/Los_Angeles"


def _caller(name: str = "Pat Caller", **kw: str) -> res.Caller:
    fields = {"email": "pat@example.com", "time_zone": LA, **kw}
    return res.Caller(name=name, **fields)


async def test_booked_email_has_text_html_and_an_ics_in_the_callers_zone(
    server: Server, app: CalendarApp, tenant: Tenant, smtp: SmtpServer, notify: Notify
) -> None:
    booked = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )
    appointment_id = booked.appointment.appointment_id
    assert await notify.worker.run_once() == 1

    [msg] = smtp.recorder.messages
    [row] = await outbox_rows(app)
    assert msg["Message-ID"] == f"<{row.id}@calendar.gleam.dev>"
    assert msg["To"] == "Pat Caller <pat@example.com>"
    assert smtp.recorder.envelopes == [("bookings@example.com", ["pat@example.com"])]
    # 9:00 in New York is 6:00 in Los Angeles: the caller reads their own time, zone named.
    text = body_of(msg, "plain")
    assert "Tuesday, November 24 at 6:00 AM" in text
    assert "America/Los_Angeles (PST)" in text
    assert "Acme Dental" in body_of(msg, "html")

    cal, method_param = invite_of(msg)
    assert (str(cal["METHOD"]), method_param) == ("REQUEST", "REQUEST")
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == f"{appointment_id}@calendar.gleam.dev"
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].params["TZID"] == LA
    start = event.decoded("DTSTART")
    assert isinstance(start, datetime)
    assert (start.hour, start.minute) == (6, 0)
    assert start == TUESDAY_9AM
    assert [str(z["TZID"]) for z in cal.walk("VTIMEZONE")] == [LA]
    assert str(event["ATTENDEE"]) == "mailto:pat@example.com"
    assert str(event["ORGANIZER"]).startswith("mailto:")

    [row] = await outbox_rows(app)
    assert (row.status, row.attempts, row.last_error) == ("SENT", 1, "")
    assert row.sent_at is not None
    # Nothing is due any more: a second round sends nothing.
    notify.clock.advance(timedelta(hours=2))
    assert await notify.worker.run_once() == 0
    assert len(smtp.recorder.messages) == 1


async def test_reschedule_raises_the_sequence_and_cancel_sends_method_cancel(
    server: Server, app: CalendarApp, tenant: Tenant, smtp: SmtpServer, notify: Notify
) -> None:
    booked = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )
    appointment_id = booked.appointment.appointment_id
    await notify.worker.run_once()
    await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(TUESDAY_9AM + timedelta(hours=2)),
        ),
        metadata=tenant.auth,
    )
    await notify.worker.run_once()
    await server.stub.Cancel(
        api.CancelRequest(appointment_id=appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    await notify.worker.run_once()

    invites = [invite_of(m) for m in smtp.recorder.messages]
    assert [(str(c["METHOD"]), p) for c, p in invites] == [
        ("REQUEST", "REQUEST"),
        ("REQUEST", "REQUEST"),
        ("CANCEL", "CANCEL"),
    ]
    events = [c.walk("VEVENT")[0] for c, _ in invites]
    assert {str(e["UID"]) for e in events} == {f"{appointment_id}@calendar.gleam.dev"}
    sequences = [int(e["SEQUENCE"]) for e in events]
    assert sequences[0] < sequences[1] < sequences[2], sequences
    assert events[1].decoded("DTSTART") == TUESDAY_9AM + timedelta(hours=2)
    assert str(events[2]["STATUS"]) == "CANCELLED"
    subjects = [str(m["Subject"]) for m in smtp.recorder.messages]
    assert subjects[1].startswith("Moved: ")
    assert subjects[2].startswith("Cancelled: ")


async def test_caller_text_is_escaped_in_html_and_kept_out_of_headers(
    server: Server, app: CalendarApp, tenant: Tenant, smtp: SmtpServer, notify: Notify
) -> None:
    name = '<script>alert("x")</script> & Co'
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller(name)), metadata=tenant.auth
    )
    await notify.worker.run_once()
    [msg] = smtp.recorder.messages
    html = body_of(msg, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    assert name in body_of(msg, "plain")


async def test_smtp_down_then_back_delivers_exactly_once(
    server: Server, app: CalendarApp, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    down = SmtpServer(free_port())  # nothing listens on its port yet
    notify = make_worker(app, http, down.port)
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )

    assert await notify.worker.run_once() == 1
    [row] = await outbox_rows(app)
    assert (row.status, row.attempts) == ("PENDING", 1)
    assert row.last_error.startswith("smtp:")
    assert "pat@example.com" not in row.last_error
    # Backoff: the first retry waits 30 s +-20 %, so nothing is due right away.
    assert row.next_attempt_at >= notify.clock.now + timedelta(seconds=23)
    assert await notify.worker.run_once() == 0

    down.start()
    try:
        notify.clock.advance(timedelta(seconds=37))
        assert await notify.worker.run_once() == 1
        notify.clock.advance(timedelta(hours=3))
        assert await notify.worker.run_once() == 0
        assert len(down.recorder.messages) == 1
    finally:
        down.stop()
    [row] = await outbox_rows(app)
    assert (row.status, row.attempts) == ("SENT", 2)


async def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    smtp: SmtpServer,
    notify: Notify,
    http: httpx.AsyncClient,
) -> None:
    for hour in range(3):
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM + timedelta(hours=hour), caller=_caller()),
            metadata=tenant.auth,
        )
    smtp.recorder.stall = True
    smtp.recorder.accept_before_stall = 1
    run = asyncio.create_task(notify.worker.run_once())
    for _ in range(200):
        if len(smtp.recorder.messages) == 1 and smtp.recorder.stalled == 2:
            break
        await asyncio.sleep(0.05)
    assert (len(smtp.recorder.messages), smtp.recorder.stalled) == (1, 2)
    # The worker dies with one message delivered and two in the middle of SMTP DATA.
    await asyncio.sleep(0.2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    rows = await outbox_rows(app)
    assert sorted(r.status for r in rows) == ["SENDING", "SENDING", "SENT"]

    # Another worker finds the two still leased, then takes them once the lease runs out.
    smtp.recorder.stall = False
    other = make_worker(app, http, smtp.port)
    other.clock.now = notify.clock.now
    assert await other.worker.run_once() == 0
    other.clock.advance(timedelta(seconds=61))
    assert await other.worker.run_once() == 2
    ids = smtp.recorder.message_ids()
    assert len(ids) == 3
    assert sorted(ids) == sorted(f"<{r.id}@calendar.gleam.dev>" for r in rows)
    rows = await outbox_rows(app)
    assert sorted((r.status, r.attempts) for r in rows) == [
        ("SENT", 1),
        ("SENT", 2),
        ("SENT", 2),
    ]


async def test_a_crash_between_send_and_commit_resends_the_same_message_id(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    smtp: SmtpServer,
    notify: Notify,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented at-least-once window: SMTP has no idempotency, the Message-ID is stable."""
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )
    worker = notify.worker
    original = worker._finish

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("process died before the SENT commit")

    monkeypatch.setattr(worker, "_finish", crash)
    await worker.run_once()
    monkeypatch.setattr(worker, "_finish", original)
    [row] = await outbox_rows(app)
    assert row.status == "SENDING"
    notify.clock.advance(timedelta(seconds=61))
    assert await worker.run_once() == 1
    assert smtp.recorder.message_ids() == [f"<{row.id}@calendar.gleam.dev>"] * 2
    [row] = await outbox_rows(app)
    assert row.status == "SENT"


async def test_sms_goes_to_the_e164_number_once_even_after_a_crash(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    smtp: SmtpServer,
    sms: SmsEmulator,
    notify: Notify,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await set_confirmations(app, tenant, Confirmations(email=False, sms=True))
    booked = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=res.Caller(name="Pat", phone="(212) 555-0100")),
        metadata=tenant.auth,
    )
    assert booked.appointment.caller.phone == "+12125550100"
    worker = notify.worker
    original = worker._finish

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("process died before the SENT commit")

    monkeypatch.setattr(worker, "_finish", crash)
    await worker.run_once()
    monkeypatch.setattr(worker, "_finish", original)
    notify.clock.advance(timedelta(seconds=61))
    assert await worker.run_once() == 1

    # The retry saw the text in the provider's log and did not send it again.
    assert sms.requests == 1
    [text] = sms.sent
    assert text["to"] == "+12125550100"
    assert len(text["body"]) <= 160
    assert "Acme Dental" in text["body"]
    assert "Tuesday, November 24 at 9:00 AM" in text["body"]
    [row] = await outbox_rows(app)
    assert (row.channel, row.status, row.attempts) == ("SMS", "SENT", 2)
    assert smtp.recorder.messages == []


async def test_sms_provider_errors_are_retried_then_refusals_fail(
    server: Server, app: CalendarApp, tenant: Tenant, sms: SmsEmulator, notify: Notify
) -> None:
    await set_confirmations(app, tenant, Confirmations(email=False, sms=True))
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=res.Caller(name="Pat", phone="+12125550100")),
        metadata=tenant.auth,
    )
    sms.fail_next = 1
    await notify.worker.run_once()
    [row] = await outbox_rows(app)
    assert (row.status, row.last_error) == ("PENDING", "sms: answered 503 20500")
    notify.clock.advance(timedelta(seconds=37))
    await notify.worker.run_once()
    [row] = await outbox_rows(app)
    assert row.status == "SENT"
    assert len(sms.sent) == 1


async def test_business_invite_goes_to_the_business_in_its_own_zone(
    server: Server, app: CalendarApp, tenant: Tenant, smtp: SmtpServer, notify: Notify
) -> None:
    await set_confirmations(
        app, tenant, Confirmations(email=True, business_email="frontdesk@example.com")
    )
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )
    assert await notify.worker.run_once() == 2
    by_rcpt = {
        rcpts[0]: msg
        for (_, rcpts), msg in zip(smtp.recorder.envelopes, smtp.recorder.messages, strict=True)
    }
    assert set(by_rcpt) == {"pat@example.com", "frontdesk@example.com"}
    business = by_rcpt["frontdesk@example.com"]
    cal, _ = invite_of(business)
    [event] = cal.walk("VEVENT")
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert str(event["ATTENDEE"]) == "mailto:frontdesk@example.com"
    assert "Pat Caller" in str(business["Subject"])
    # The caller's invite names the business as organizer and replies go to it.
    caller_cal, _ = invite_of(by_rcpt["pat@example.com"])
    assert str(caller_cal.walk("VEVENT")[0]["ORGANIZER"]) == "mailto:frontdesk@example.com"
    assert by_rcpt["pat@example.com"]["Reply-To"] == "frontdesk@example.com"


async def test_without_smtp_configured_email_stays_queued_and_is_logged_once(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notify = make_worker(app, http, 25, smtp_host="", sms_account_sid="")
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )
    with caplog.at_level(logging.WARNING, logger="gleam.calendar.notify"):
        assert await notify.worker.run_once() == 0
        assert await notify.worker.run_once() == 0
    smtp_warnings = [r for r in caplog.records if "SMTP is not configured" in r.getMessage()]
    assert len(smtp_warnings) == 1
    [row] = await outbox_rows(app)
    assert (row.status, row.attempts) == ("PENDING", 0)


async def test_erased_contact_data_stops_a_pending_message(
    server: Server, app: CalendarApp, tenant: Tenant, smtp: SmtpServer, notify: Notify
) -> None:
    from sqlalchemy import update

    from service.store import tables as t

    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )
    async with app.deps.db.write() as session:
        await session.execute(update(t.Appointment).values(caller_email=""))
    await notify.worker.run_once()
    [row] = await outbox_rows(app)
    assert row.status == "FAILED"
    assert smtp.recorder.messages == []


async def test_the_reconciler_queues_the_confirmation_of_a_booking_it_settles(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock, smtp: SmtpServer, notify: Notify
) -> None:
    script_provider(app, {"create_error": ProviderUnavailable("BUILTIN", "timed out")})
    booked = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, caller=_caller()), metadata=tenant.auth
    )
    assert booked.appointment.status == res.APPOINTMENT_STATUS_PENDING
    assert await outbox_rows(app) == []
    clock.advance(timedelta(minutes=2))
    assert (await reconcile_pending(app.deps))["confirmed"] == 1
    [row] = await outbox_rows(app)
    assert (row.kind, row.channel) == ("BOOKED", "EMAIL")
    await notify.worker.run_once()
    [msg] = smtp.recorder.messages
    cal, _ = invite_of(msg)
    assert str(cal.walk("VEVENT")[0]["UID"]) == (
        f"{booked.appointment.appointment_id}@calendar.gleam.dev"
    )
