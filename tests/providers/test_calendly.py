"""The Calendly adapter through gRPC, against the stateful emulator in tests/emulators/calendly.py.

The server's HTTP client is pointed at the emulator (ASGITransport) and ``calendly_api_url`` at
its base URL, so the registered adapter runs unchanged; only its clock is the suite's clock (the
shared ProviderContext carries none), bound by wrapping the registered factory.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from service.config import Settings
from service.http.app import create_http_app
from service.model import AgentSettings, ProviderKind, Scope
from service.providers.base import ProviderContext
from service.providers.calendly import (
    AVAILABILITY_WINDOW,
    CalendlyProvider,
    calendly_adapter,
    placeholder_email,
)
from service.providers.calendly_usage import INVITEES_PER_MINUTE
from service.scheduling import registry
from service.scheduling.app import CalendarApp
from service.scheduling.connections import webhook_secret_context
from service.scheduling.maintenance import cancel_leftovers, reconcile_pending
from service.store import tables as t
from service.store.crypto import generate_key
from tests.conftest import Server
from tests.emulators.calendly import BASE, CalendlyEmulator, ScheduledEvent, parse
from tests.helpers import (
    NOW,
    TUESDAY_9AM,
    Clock,
    Tenant,
    assert_error,
    office_hours,
    retry_delay,
    tuesday_starts,
)

TOKEN = "pat-good"


@pytest.fixture
def config(migrated_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=migrated_url,
        data_dir=tmp_path,
        encryption_keys=generate_key(),
        settings_cache_seconds=0.0,
        auth_cache_seconds=30.0,
        calendly_api_url=BASE,
    )


@pytest.fixture
def emulator() -> CalendlyEmulator:
    return CalendlyEmulator(now=NOW)


@pytest.fixture
async def wired(
    app: CalendarApp, emulator: CalendlyEmulator, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> CalendarApp:
    await app.deps.http.aclose()
    app.deps.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app()))
    assert registry.ADAPTERS[ProviderKind.CALENDLY] is calendly_adapter

    def factory(ctx: ProviderContext) -> CalendlyProvider:
        return CalendlyProvider(ctx, clock=clock)

    monkeypatch.setitem(registry.ADAPTERS, ProviderKind.CALENDLY, factory)
    return app


async def connect(server: Server, tenant: Tenant, token: str = TOKEN) -> res.Connection:
    answer = await server.stub.Connect(
        api.ConnectRequest(
            display_name="Calendly", calendly=api.CalendlyCredentials(access_token=token)
        ),
        metadata=tenant.auth,
    )
    return answer.connection


async def use_calendly(
    server: Server, app: CalendarApp, tenant: Tenant, emulator: CalendlyEmulator
) -> tuple[str, str]:
    """Connects Calendly, points the agent at it; returns (connection id, Consultation id)."""
    conn = await connect(server, tenant)
    await app.agents.save_settings(
        tenant.account_id,
        AgentSettings(
            agent_id=tenant.agent_id,
            enabled=True,
            connection_id=conn.connection_id,
            scopes=frozenset(Scope),
            business_name="Acme Dental",
            availability=office_hours(),
        ),
    )
    types = await server.stub.ListEventTypes(
        api.ListEventTypesRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    consultation = next(e for e in types.event_types if e.title == "Consultation")
    return conn.connection_id, consultation.event_type_id


async def book(
    server: Server, tenant: Tenant, event_type_id: str, start: datetime, **caller: str
) -> res.Appointment:
    who = {"name": "Pat Caller", "email": "pat@example.com", "phone": "+12125550100", **caller}
    answer = await server.stub.Book(
        api.BookRequest(
            agent_id=tenant.agent_id,
            event_type_id=event_type_id,
            start_time=ts(start),
            caller=res.Caller(**who),
            call_id="call-1",
        ),
        metadata=tenant.auth,
    )
    return answer.appointment


# Connect ----------------------------------------------------------------------------------


async def test_connect_checks_token_and_stores_it_encrypted(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    conn = await connect(server, tenant)
    assert conn.provider == res.PROVIDER_CALENDLY
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    assert conn.external_account == "ada@acme-dental.example"
    assert conn.default_calendar_id == emulator.user_uri
    assert emulator.calls("GET", "/users/me")
    async with wired.deps.db.read() as session:
        row = await session.get(t.Connection, conn.connection_id)
    assert row is not None
    assert row.credentials is not None
    assert TOKEN not in str(row.credentials)
    assert wired.deps.cipher.decrypt(row.credentials, context=row.id) == TOKEN
    assert row.provider_state["user_uri"] == emulator.user_uri
    assert row.provider_state["organization_uri"] == emulator.org_uri
    assert row.provider_state["timezone"] == "America/New_York"

    cals = await server.stub.ListCalendars(
        api.ListCalendarsRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert [c.calendar_id for c in cals.calendars] == [emulator.user_uri]
    checked = await server.stub.TestConnection(
        api.TestConnectionRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert checked.ok


async def test_bad_token_is_credentials_rejected(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await connect(server, tenant, token="pat-wrong")
    info = assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CREDENTIALS_REJECTED")
    assert info.metadata["provider"] == "CALENDLY"
    assert emulator.log[-1].status == 401
    listed = await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=tenant.auth)
    assert [c.provider for c in listed.connections] == [res.PROVIDER_BUILTIN]


async def test_event_types_follow_every_page(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    from tests.emulators.calendly import EmulatedEventType

    emulator.event_types += [
        EmulatedEventType(f"EXTRA{i:04d}", f"Extra {i}", 20) for i in range(205)
    ]
    conn = await connect(server, tenant)
    pages = emulator.calls("GET", "/event_types")
    assert len(pages) == 3  # 208 types at 100 a page
    assert [p.query.get("page_token") for p in pages] == [None, "100", "200"]
    types = await server.stub.ListEventTypes(
        api.ListEventTypesRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    titles = {e.title for e in types.event_types}
    assert len(types.event_types) == 207  # the inactive "Old offer" is not offered
    assert {"Consultation", "Quick call", "Extra 0", "Extra 204"} <= titles
    assert "Old offer" not in titles
    durations = {e.title: e.duration.seconds for e in types.event_types}
    assert durations["Consultation"] == 3600
    assert durations["Quick call"] == 900


# Availability -------------------------------------------------------------------------------


async def test_45_day_range_is_split_into_windows_and_filtered_by_agent_hours(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    end = NOW + timedelta(days=45)
    answer = await server.stub.ListSlots(
        api.ListSlotsRequest(
            agent_id=tenant.agent_id,
            event_type_id=consultation,
            time_range=api.TimeRange(start_time=ts(NOW), end_time=ts(end)),
        ),
        metadata=tenant.auth,
    )
    windows = [
        (parse(c.query["start_time"]), parse(c.query["end_time"]))
        for c in emulator.calls("GET", "/event_type_available_times")
        if c.status == 200
    ]
    assert len(windows) >= 2
    assert all(b - a <= AVAILABILITY_WINDOW for a, b in windows)
    assert min(a for a, _ in windows) > NOW  # clipped into the future
    # Contiguous, and covering the whole range (the service may ask for a little more).
    ordered = sorted(windows)
    assert all(a2 == b1 for (_, b1), (a2, _) in itertools.pairwise(ordered))
    assert ordered[-1][1] >= end
    starts = [s.start_time.ToDatetime(tzinfo=UTC) for s in answer.slots]
    half = NOW + AVAILABILITY_WINDOW
    assert any(s < half for s in starts)
    assert any(s >= half for s in starts)
    # Calendly offers 08:00-18:00 New York; the agent works 9-17.
    hours = {(s - timedelta(hours=5)).hour for s in starts}  # EST all range (no DST change)
    assert hours == set(range(9, 17))
    offered_eight = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # Tuesday 08:00 New York
    assert offered_eight not in starts


async def test_provider_slot_taken_elsewhere_is_not_offered(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    await book(server, tenant, consultation, TUESDAY_9AM)
    answer = await server.stub.ListSlots(
        api.ListSlotsRequest(
            agent_id=tenant.agent_id,
            event_type_id=consultation,
            date={"year": 2026, "month": 11, "day": 24},
        ),
        metadata=tenant.auth,
    )
    starts = [s.start_time.ToDatetime(tzinfo=UTC) for s in answer.slots]
    assert TUESDAY_9AM not in starts
    assert TUESDAY_9AM + timedelta(hours=1) in starts


# Book, reschedule, cancel ------------------------------------------------------------------


async def test_book_reschedule_cancel(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    appt = await book(server, tenant, consultation, TUESDAY_9AM, time_zone="Europe/Paris")
    assert appt.status == res.APPOINTMENT_STATUS_CONFIRMED
    (event,) = emulator.active_events()
    assert appt.provider_reference == event.uri
    assert event.start == TUESDAY_9AM
    sent = emulator.calls("POST", "/invitees")[0].body
    assert sent["event_type"] == next(
        e.uri for e in emulator.event_types if e.name == "Consultation"
    )
    assert sent["start_time"] == "2026-11-24T14:00:00.000000Z"
    assert sent["invitee"] == {
        "name": "Pat Caller",
        "email": "pat@example.com",
        "timezone": "Europe/Paris",
        "text_reminder_number": "+12125550100",
    }
    assert sent["tracking"]["utm_content"] == appt.appointment_id

    eleven = TUESDAY_9AM + timedelta(hours=2)
    moved = await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appt.appointment_id, agent_id=tenant.agent_id, start_time=ts(eleven)
        ),
        metadata=tenant.auth,
    )
    new_uri = moved.appointment.provider_reference
    assert new_uri != event.uri
    assert emulator.events[event.uuid].status == "canceled"
    (new,) = emulator.active_events()
    assert new.uri == new_uri
    assert new.start == eleven
    # Book the new time first, cancel the old one after.
    order = [(c.method, c.path) for c in emulator.log if c.method == "POST"]
    assert order[-2:] == [
        ("POST", "/invitees"),
        ("POST", f"/scheduled_events/{event.uuid}/cancellation"),
    ]

    cancelled = await server.stub.Cancel(
        api.CancelRequest(appointment_id=appt.appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    assert cancelled.appointment.status == res.APPOINTMENT_STATUS_CANCELLED
    assert emulator.active_events() == []


async def test_caller_without_email_gets_a_placeholder(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    appt = await book(server, tenant, consultation, TUESDAY_9AM, email="", phone="")
    assert appt.status == res.APPOINTMENT_STATUS_CONFIRMED
    sent = emulator.calls("POST", "/invitees")[0].body["invitee"]
    assert sent["email"] == placeholder_email(appt.appointment_id)
    assert sent["email"].endswith(".invalid")
    assert sent["timezone"] == "America/New_York"
    assert "text_reminder_number" not in sent


async def test_failing_cancel_keeps_new_booking_and_records_leftover(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    appt = await book(server, tenant, consultation, TUESDAY_9AM)
    (old,) = emulator.active_events()
    emulator.cancel_failures = 100
    eleven = TUESDAY_9AM + timedelta(hours=2)
    moved = await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appt.appointment_id, agent_id=tenant.agent_id, start_time=ts(eleven)
        ),
        metadata=tenant.auth,
    )
    assert moved.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert moved.appointment.start_time.ToDatetime(tzinfo=UTC) == eleven
    assert moved.appointment.provider_reference != old.uri
    assert emulator.events[old.uuid].status == "active"  # the cancel failed
    async with wired.deps.db.read() as session:
        row = await session.get(t.Appointment, appt.appointment_id)
    assert row is not None
    assert row.pending_cancellations == [old.uri]

    assert await cancel_leftovers(wired.deps) == 0  # still failing: kept for later
    emulator.cancel_failures = 0
    assert await cancel_leftovers(wired.deps) == 1
    assert emulator.events[old.uuid].status == "canceled"
    async with wired.deps.db.read() as session:
        row = await session.get(t.Appointment, appt.appointment_id)
    assert row is not None
    assert row.pending_cancellations == []
    assert [e.start for e in emulator.active_events()] == [eleven]


async def test_failing_new_booking_keeps_the_old_time(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    appt = await book(server, tenant, consultation, TUESDAY_9AM)
    emulator.rate_limit("/invitees", 30)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Reschedule(
            api.RescheduleRequest(
                appointment_id=appt.appointment_id,
                agent_id=tenant.agent_id,
                start_time=ts(TUESDAY_9AM + timedelta(hours=2)),
            ),
            metadata=tenant.auth,
        )
    assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_RATE_LIMITED")
    assert not [c for c in emulator.log if c.path.endswith("/cancellation")]
    (event,) = emulator.active_events()
    assert event.uri == appt.provider_reference
    assert event.start == TUESDAY_9AM


async def test_unknown_outcome_is_settled_by_find_event(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator, clock: Clock
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    emulator.fail_after_booking = 1
    appt = await book(server, tenant, consultation, TUESDAY_9AM)
    assert appt.status == res.APPOINTMENT_STATUS_PENDING
    clock.advance(timedelta(minutes=5))
    emulator.now = clock.now
    counts = await reconcile_pending(wired.deps)
    assert counts["confirmed"] == 1
    async with wired.deps.db.read() as session:
        row = await session.get(t.Appointment, appt.appointment_id)
    (event,) = emulator.active_events()
    assert row is not None
    assert row.provider_reference == event.uri


# Rate limits and credentials ---------------------------------------------------------------


async def test_provider_rate_limit_is_provider_rate_limited_with_retry(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    emulator.rate_limit("/invitees", 42)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await book(server, tenant, consultation, TUESDAY_9AM)
    info = assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_RATE_LIMITED")
    assert info.metadata["retry_after_seconds"] == "42"
    assert retry_delay(caught.value) == 42
    assert emulator.active_events() == []
    # Until the reset we refuse without asking Calendly again.
    sent = len(emulator.calls("POST", "/invitees"))
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await book(server, tenant, consultation, TUESDAY_9AM)
    assert_error(again.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_RATE_LIMITED")
    assert len(emulator.calls("POST", "/invitees")) == sent


async def test_own_counter_refuses_the_eleventh_booking_in_a_minute(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    starts = [TUESDAY_9AM + timedelta(hours=h) for h in range(8)]
    starts += [TUESDAY_9AM + timedelta(days=1, hours=h) for h in range(3)]
    for start in starts[:INVITEES_PER_MINUTE]:
        appt = await book(server, tenant, consultation, start)
        assert appt.status == res.APPOINTMENT_STATUS_CONFIRMED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await book(server, tenant, consultation, starts[INVITEES_PER_MINUTE])
    info = assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_RATE_LIMITED")
    assert 0 < float(info.metadata["retry_after_seconds"]) <= 60
    assert len(emulator.calls("POST", "/invitees")) == INVITEES_PER_MINUTE


async def test_revoked_token_later_needs_reauth(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    conn_id, consultation = await use_calendly(server, wired, tenant, emulator)
    emulator.revoke(TOKEN)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListSlots(
            api.ListSlotsRequest(
                agent_id=tenant.agent_id,
                event_type_id=consultation,
                date={"year": 2026, "month": 11, "day": 24},
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CALENDAR_NOT_CONNECTED")
    assert info.metadata["connection_status"] == "NEEDS_REAUTH"
    got = await server.stub.GetConnection(
        api.GetConnectionRequest(connection_id=conn_id), metadata=tenant.auth
    )
    assert got.connection.status == res.CONNECTION_STATUS_NEEDS_REAUTH
    # Later calls refuse at once, without asking Calendly.
    before = len(emulator.log)
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await book(server, tenant, consultation, TUESDAY_9AM)
    assert_error(again.value, grpc.StatusCode.FAILED_PRECONDITION, "CALENDAR_NOT_CONNECTED")
    assert len(emulator.log) == before


# Pushes -------------------------------------------------------------------------------------


async def _stored_state(app: CalendarApp, connection_id: str) -> tuple[str, dict[str, object]]:
    async with app.deps.db.read() as session:
        row = await session.get(t.Connection, connection_id)
    assert row is not None
    sealed = row.provider_state["webhook_secret"]
    secret = app.deps.cipher.decrypt(sealed, context=webhook_secret_context(connection_id))
    return secret, dict(row.provider_state)


async def test_connect_subscribes_a_user_webhook_with_our_signing_key(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    conn = await connect(server, tenant)
    [(uid, hook)] = emulator.webhooks.items()
    secret, state = await _stored_state(wired, conn.connection_id)
    assert hook == {
        "url": f"{wired.deps.config.public_base_url}/webhooks/calendly/{conn.connection_id}",
        "events": ["invitee.created", "invitee.canceled"],
        "organization": emulator.org_uri,
        "user": emulator.user_uri,
        "scope": "user",
        "signing_key": secret,
    }
    assert state["push"] == "on"
    assert state["calendly_webhook_uri"] == f"{BASE}/webhook_subscriptions/{uid}"


async def test_connect_succeeds_when_calendly_refuses_the_webhook(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    emulator.rate_limit("/webhook_subscriptions", 60)
    conn = await connect(server, tenant)
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    assert emulator.webhooks == {}
    _, state = await _stored_state(wired, conn.connection_id)
    assert state["push"] == "off"


async def test_disconnect_deletes_the_subscription(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    conn = await connect(server, tenant)
    [uid] = emulator.webhooks
    await server.stub.Disconnect(
        api.DisconnectRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert emulator.webhooks == {}
    [deleted] = emulator.calls("DELETE", f"/webhook_subscriptions/{uid}")
    assert deleted.status == 204


async def test_an_outside_booking_is_pushed_and_drops_held_slots(
    wired: CalendarApp, server: Server, tenant: Tenant, emulator: CalendlyEmulator
) -> None:
    _, consultation = await use_calendly(server, wired, tenant, emulator)
    assert TUESDAY_9AM in await tuesday_starts(server, tenant, consultation)
    et = emulator.event_types[0]
    outside = ScheduledEvent(
        "outside1", et, TUESDAY_9AM, TUESDAY_9AM + timedelta(minutes=et.duration), NOW
    )
    emulator.events[outside.uuid] = outside
    assert TUESDAY_9AM in await tuesday_starts(server, tenant, consultation)  # held, not re-read

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_http_app(wired)), base_url="http://svc"
    ) as push_client:
        emulator.push_client = push_client
        [answer] = await emulator.push("invitee.created", {"event": outside.uri})
    assert answer.status_code == 200
    assert TUESDAY_9AM not in await tuesday_starts(server, tenant, consultation)
