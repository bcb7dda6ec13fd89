"""No lost booking: provider refusals, unknown outcomes, the reconciler, retention and audit."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest
from google.type import date_pb2
from sqlalchemy import func, select

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from service.deadline import Deadline
from service.errors import ProviderUnavailable, SlotUnavailable
from service.providers.base import CalendarProvider, EventRef, EventRequest
from service.scheduling.app import CalendarApp
from service.scheduling.deps import Deps
from service.scheduling.maintenance import (
    cancel_leftovers,
    erase_expired_contacts,
    reconcile_pending,
)
from service.scheduling.registry import default_provider
from service.store import tables as t
from tests.conftest import Server
from tests.helpers import (
    TUESDAY_9AM,
    Clock,
    Tenant,
    assert_error,
    book_or_refused,
    book_request,
    set_daily_cap,
)
from tests.scripted import Wrapped, script_provider

TUESDAY = {"year": 2026, "month": 11, "day": 24}


async def _counts(app: CalendarApp) -> tuple[list[str], int]:
    async with app.deps.db.read() as session:
        statuses = list(await session.scalars(select(t.Appointment.status)))
        claims = await session.scalar(select(func.count()).select_from(t.TimeClaim))
    return statuses, int(claims or 0)


async def test_a_provider_refusal_releases_the_claim(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    script: dict[str, object] = {"create_error": SlotUnavailable(TUESDAY_9AM, ())}
    script_provider(app, script)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM, request_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
            metadata=tenant.auth,
        )
    assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
    assert await _counts(app) == (["FAILED"], 0)
    slots = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY), metadata=tenant.auth
    )
    assert slots.slots[0].start_time == ts(TUESDAY_9AM)
    # The provider recovers; the same request id books for real (the refusal was not stored).
    script.clear()
    ok = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, request_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
        metadata=tenant.auth,
    )
    assert ok.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED


async def test_unknown_outcome_stays_pending_until_the_reconciler_finds_the_event(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock
) -> None:
    script_provider(app, {"create_error": ProviderUnavailable("BUILTIN", "timed out")})
    booked = await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    assert booked.appointment.status == res.APPOINTMENT_STATUS_PENDING
    # The time stays held while the outcome is unknown.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM, caller=res.Caller(name="Other")), metadata=tenant.auth
        )
    assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")

    assert await reconcile_pending(app.deps) == {"confirmed": 0, "failed": 0, "unknown": 0}
    clock.advance(timedelta(minutes=2))
    assert await reconcile_pending(app.deps) == {"confirmed": 1, "failed": 0, "unknown": 0}
    got = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=booked.appointment.appointment_id),
        metadata=tenant.auth,
    )
    assert got.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert got.appointment.provider_reference


async def test_reconciler_fails_and_frees_a_booking_the_provider_never_made(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock
) -> None:
    script_provider(app, {"create_error": ProviderUnavailable("BUILTIN"), "find": "missing"})
    request = book_request(tenant, TUESDAY_9AM, request_id="3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f")
    booked = await server.stub.Book(request, metadata=tenant.auth)
    assert booked.appointment.status == res.APPOINTMENT_STATUS_PENDING
    clock.advance(timedelta(minutes=2))
    await server.stub.ListSlots(  # holds the day's availability, with 9:00 claimed
        api.ListSlotsRequest(
            agent_id=tenant.agent_id, date=date_pb2.Date(year=2026, month=11, day=24)
        ),
        metadata=tenant.auth,
    )
    assert len(app.availability.busy_cache) > 0
    assert await reconcile_pending(app.deps, app.invalidator) == {
        "confirmed": 0,
        "failed": 1,
        "unknown": 0,
    }
    assert await _counts(app) == (["FAILED"], 0)
    assert len(app.availability.busy_cache) == 0  # the freed time is re-read, not held busy
    # The request id is free again: a retry books afresh once the provider works.
    app.deps.provider_factory = None
    retried = await server.stub.Book(request, metadata=tenant.auth)
    assert retried.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert retried.appointment.appointment_id != booked.appointment.appointment_id


async def test_a_duplicate_arriving_mid_flight_waits_for_the_first(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    script_provider(app, {"delay": 0.4})
    request = book_request(tenant, TUESDAY_9AM, request_id="4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a")
    first = asyncio.ensure_future(server.stub.Book(request, metadata=tenant.auth, timeout=20))
    await asyncio.sleep(0.15)  # the first call is now waiting on the provider
    second = await server.stub.Book(request, metadata=tenant.auth, timeout=20)
    done = await first
    assert second.appointment.appointment_id == done.appointment.appointment_id
    assert second.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert await _counts(app) == (["CONFIRMED"], 1)


async def test_a_duplicate_that_sees_the_first_calls_claim_is_answered_as_the_first(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    # Both calls look up the request id before either claims. The first to read busy time
    # claims at once and then waits on the provider; the other reads busy time after that
    # claim, so the time looks taken: it must answer with the first call's appointment, not
    # SLOT_UNAVAILABLE.
    script_provider(app, {"busy_delays": [0.0, 0.3], "delay": 0.6})
    request = book_request(tenant, TUESDAY_9AM, request_id="5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b")
    first, second = await asyncio.gather(
        server.stub.Book(request, metadata=tenant.auth, timeout=20),
        server.stub.Book(request, metadata=tenant.auth, timeout=20),
    )
    assert first.appointment.appointment_id == second.appointment.appointment_id
    assert second.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert await _counts(app) == (["CONFIRMED"], 1)


async def test_every_change_is_audited_with_agent_and_call(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    booked = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, call_id="call-A"), metadata=tenant.auth
    )
    appointment_id = booked.appointment.appointment_id
    await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(TUESDAY_9AM + timedelta(hours=1)),
            call_id="call-B",
        ),
        metadata=tenant.auth,
    )
    await server.stub.Cancel(
        api.CancelRequest(
            appointment_id=appointment_id, agent_id=tenant.agent_id, call_id="call-C"
        ),
        metadata=tenant.auth,
    )
    async with app.deps.db.read() as session:
        rows = (
            await session.execute(
                select(t.AuditRecord.action, t.AuditRecord.agent_id, t.AuditRecord.call_id)
                .where(t.AuditRecord.appointment_id == appointment_id)
                .order_by(t.AuditRecord.created_at)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("BOOK", tenant.agent_id, "call-A"),
        ("RESCHEDULE", tenant.agent_id, "call-B"),
        ("CANCEL", tenant.agent_id, "call-C"),
    ]


async def test_retention_erases_contact_data_of_old_appointments(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock
) -> None:
    old = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, notes="prefers mornings"), metadata=tenant.auth
    )
    recent = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM + timedelta(weeks=8)), metadata=tenant.auth
    )
    clock.advance(timedelta(days=91))
    assert await erase_expired_contacts(app.deps) == 1
    assert await erase_expired_contacts(app.deps) == 0
    gone = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=old.appointment.appointment_id),
        metadata=tenant.auth,
    )
    assert (gone.appointment.caller.email, gone.appointment.caller.phone) == ("", "")
    assert gone.appointment.notes == ""
    assert gone.appointment.caller.name == "Pat Caller"
    kept = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=recent.appointment.appointment_id),
        metadata=tenant.auth,
    )
    assert kept.appointment.caller.email == "pat@example.com"


async def _list(server: Server, tenant: Tenant, day: dict[str, int]) -> api.ListSlotsResponse:
    return await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=day), metadata=tenant.auth
    )


async def test_empty_answers_say_why(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock
) -> None:
    settings = await app.agents.get_settings(tenant.account_id, tenant.agent_id)
    availability = replace(
        settings.availability, minimum_notice=timedelta(hours=48), max_advance_days=10
    )
    await app.agents.save_settings(tenant.account_id, replace(settings, availability=availability))
    soon = await _list(server, tenant, TUESDAY)
    assert list(soon.slots) == []
    assert soon.no_availability_reason == api.NO_AVAILABILITY_REASON_INSIDE_NOTICE_PERIOD
    assert (soon.next_available_date.month, soon.next_available_date.day) == (11, 25)

    far = await _list(server, tenant, {"year": 2026, "month": 12, "day": 15})
    assert far.no_availability_reason == api.NO_AVAILABILITY_REASON_BEYOND_ADVANCE_WINDOW

    past = await _list(server, tenant, {"year": 2026, "month": 11, "day": 20})
    assert past.no_availability_reason == api.NO_AVAILABILITY_REASON_IN_THE_PAST

    wednesday = TUESDAY_9AM + timedelta(days=1)
    await server.stub.CreateBusyBlock(
        api.CreateBusyBlockRequest(
            busy_block=res.BusyBlock(
                connection_id=tenant.connection_id,
                start_time=ts(wednesday),
                end_time=ts(wednesday + timedelta(hours=8)),
                label="Training",
            )
        ),
        metadata=tenant.auth,
    )
    full = await _list(server, tenant, {"year": 2026, "month": 11, "day": 25})
    assert full.no_availability_reason == api.NO_AVAILABILITY_REASON_FULLY_BOOKED
    assert (full.next_available_date.month, full.next_available_date.day) == (11, 26)


async def test_daily_cap_limits_bookings_per_day(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    await set_daily_cap(app, tenant, 2)
    for hours in (0, 2):
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM + timedelta(hours=hours)), metadata=tenant.auth
        )
    capped = await _list(server, tenant, TUESDAY)
    assert list(capped.slots) == []
    assert capped.no_availability_reason == api.NO_AVAILABILITY_REASON_DAILY_CAP_REACHED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM + timedelta(hours=4)), metadata=tenant.auth
        )
    info = assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
    assert info.metadata["alternatives"].startswith("2026-11-25T14:00:00")


async def test_concurrent_books_never_exceed_the_daily_cap(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    await set_daily_cap(app, tenant, 2)

    # Eight different times on one day: no two overlap, so only the cap can refuse them, and
    # all eight pass the live check before any of them claims.
    outcomes = await asyncio.gather(
        *(
            book_or_refused(
                server.stub, tenant, book_request(tenant, TUESDAY_9AM + timedelta(hours=hours))
            )
            for hours in range(8)
        )
    )
    assert outcomes.count("booked") == 2
    async with app.deps.db.read() as session:
        active = await session.scalar(
            select(func.count())
            .select_from(t.Appointment)
            .where(t.Appointment.status.in_(["PENDING", "CONFIRMED"]))
        )
    assert active == 2


class _Crash(Exception):
    """Stands for the process dying right after the provider said yes."""


async def test_crash_after_provider_success_is_confirmed_by_the_reconciler(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock
) -> None:
    def factory(deps: Deps, row: t.Connection) -> CalendarProvider:
        inner = default_provider(deps, row)

        class CrashAfterCreate(Wrapped):
            async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef:
                await inner.create_event(request, deadline)
                raise _Crash

        return CrashAfterCreate(inner, {})  # type: ignore[return-value]

    app.deps.provider_factory = factory
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    assert_error(caught.value, grpc.StatusCode.INTERNAL, "INTERNAL")
    assert await _counts(app) == (["PENDING"], 1)
    app.deps.provider_factory = None
    clock.advance(timedelta(minutes=2))
    assert await reconcile_pending(app.deps) == {"confirmed": 1, "failed": 0, "unknown": 0}
    assert await _counts(app) == (["CONFIRMED"], 1)


async def test_leftover_provider_events_are_cancelled_until_the_provider_agrees(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    script: dict[str, object] = {"leftovers": ("old-event-1",), "cancel_failures": 1}
    script_provider(app, script)
    booked = await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=booked.appointment.appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(TUESDAY_9AM + timedelta(hours=1)),
        ),
        metadata=tenant.auth,
    )
    assert await cancel_leftovers(app.deps) == 0  # the provider fails the first time
    assert await cancel_leftovers(app.deps) == 1
    assert script["cancelled"] == ["old-event-1"]
    assert await cancel_leftovers(app.deps) == 0  # nothing left: no second cancel
    async with app.deps.db.read() as session:
        row = await session.get(t.Appointment, booked.appointment.appointment_id)
    assert row is not None
    assert row.pending_cancellations == []
