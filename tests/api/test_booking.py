"""Booking rules through gRPC: scopes, no double booking under concurrency, idempotency, buffers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import func, select

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from service.model import EventDefaults, Scope
from service.scheduling.app import CalendarApp
from service.store import tables as t
from tests.conftest import Server
from tests.helpers import (
    TUESDAY_9AM,
    Tenant,
    assert_error,
    book_or_refused,
    book_request,
    make_tenant,
)

TUESDAY = {"year": 2026, "month": 11, "day": 24}


@pytest.mark.parametrize(
    ("granted", "call", "missing"),
    [
        ({Scope.CREATE_EVENTS, Scope.RESCHEDULE_EVENTS}, "ListSlots", "READ_CALENDAR"),
        ({Scope.READ_CALENDAR, Scope.RESCHEDULE_EVENTS}, "Book", "CREATE_EVENTS"),
        ({Scope.READ_CALENDAR, Scope.CREATE_EVENTS}, "Reschedule", "RESCHEDULE_EVENTS"),
        ({Scope.READ_CALENDAR, Scope.CREATE_EVENTS}, "Cancel", "RESCHEDULE_EVENTS"),
    ],
)
async def test_calls_outside_the_scopes_are_denied(
    server: Server, app: CalendarApp, tenant: Tenant, granted: set[Scope], call: str, missing: str
) -> None:
    booked = await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    appointment_id = booked.appointment.appointment_id
    settings = await app.agents.get_settings(tenant.account_id, tenant.agent_id)
    await app.agents.save_settings(tenant.account_id, replace(settings, scopes=frozenset(granted)))
    requests = {
        "ListSlots": api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY),
        "Book": book_request(tenant, TUESDAY_9AM + timedelta(hours=1)),
        "Reschedule": api.RescheduleRequest(
            appointment_id=appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(TUESDAY_9AM + timedelta(hours=2)),
        ),
        "Cancel": api.CancelRequest(appointment_id=appointment_id, agent_id=tenant.agent_id),
    }
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(server.stub, call)(requests[call], metadata=tenant.auth)
    info = assert_error(caught.value, grpc.StatusCode.PERMISSION_DENIED, "SCOPE_DENIED")
    assert info.metadata["missing_scope"] == missing


async def test_disabled_agent_is_calendar_disabled(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    settings = await app.agents.get_settings(tenant.account_id, tenant.agent_id)
    await app.agents.save_settings(tenant.account_id, replace(settings, enabled=False))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    info = assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CALENDAR_DISABLED")
    assert info.metadata["agent_id"] == tenant.agent_id


async def test_unknown_agent_is_calendar_disabled(server: Server, tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListSlots(
            api.ListSlotsRequest(agent_id="nobody", date=TUESDAY), metadata=tenant.auth
        )
    assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CALENDAR_DISABLED")


async def test_event_type_not_allowed(server: Server, app: CalendarApp, tenant: Tenant) -> None:
    other = await server.stub.CreateEventType(
        api.CreateEventTypeRequest(
            connection_id=tenant.connection_id,
            event_type=res.EventType(title="Surgery", duration={"seconds": 3600}),
        ),
        metadata=tenant.auth,
    )
    settings = await app.agents.get_settings(tenant.account_id, tenant.agent_id)
    await app.agents.save_settings(
        tenant.account_id, replace(settings, allowed_event_type_ids=(tenant.event_type_id,))
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM, event_type_id=other.event_type.event_type_id),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.PERMISSION_DENIED, "EVENT_TYPE_NOT_ALLOWED")
    assert info.metadata["event_type_id"] == other.event_type.event_type_id


@pytest.mark.parametrize(
    ("caller", "field"),
    [
        (res.Caller(name=""), "caller.name"),
        (res.Caller(name="Pat", email="not-an-email"), "caller.email"),
        (res.Caller(name="Pat", phone="call me maybe"), "caller.phone"),
        (res.Caller(name="Pat", time_zone="Nowhere/Land"), "caller.time_zone"),
    ],
)
async def test_bad_caller_data_is_refused_before_booking(
    server: Server, app: CalendarApp, tenant: Tenant, caller: res.Caller, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM, caller=caller), metadata=tenant.auth
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == field
    async with app.deps.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(t.Appointment)) == 0


async def test_fifty_concurrent_books_for_one_slot_make_one_appointment(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    outcomes = await asyncio.gather(
        *(
            book_or_refused(
                server.stub,
                tenant,
                book_request(tenant, TUESDAY_9AM, caller=res.Caller(name=f"Caller {i}")),
            )
            for i in range(50)
        )
    )
    assert outcomes.count("booked") == 1
    assert outcomes.count("refused") == 49
    async with app.deps.db.read() as session:
        statuses = list(await session.scalars(select(t.Appointment.status)))
        claims = await session.scalar(select(func.count()).select_from(t.TimeClaim))
    assert statuses.count("CONFIRMED") == 1
    assert "PENDING" not in statuses
    assert claims == 1


async def test_buffers_make_neighbouring_bookings_conflict(
    server: Server, app: CalendarApp
) -> None:
    tenant = await make_tenant(
        app,
        defaults=EventDefaults(
            buffer_before=timedelta(minutes=15), buffer_after=timedelta(minutes=15)
        ),
    )
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM + timedelta(hours=1)), metadata=tenant.auth
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM + timedelta(minutes=30)), metadata=tenant.auth
        )
    assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
    ok = await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    assert ok.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED


async def test_same_request_id_returns_the_same_appointment(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    request = book_request(tenant, TUESDAY_9AM, request_id="2c1f4b8e-9a3d-4e7f-8b6a-5d4c3b2a1f0e")
    results = await asyncio.gather(
        *(server.stub.Book(request, metadata=tenant.auth, timeout=30) for _ in range(5))
    )
    ids = {r.appointment.appointment_id for r in results}
    assert len(ids) == 1
    later = await server.stub.Book(request, metadata=tenant.auth)
    assert later.appointment.appointment_id in ids
    async with app.deps.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(t.Appointment)) == 1

    changed = book_request(tenant, TUESDAY_9AM + timedelta(hours=1), request_id=request.request_id)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(changed, metadata=tenant.auth)
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    assert info.metadata["field"] == "request_id"


async def test_a_refused_booking_frees_its_request_id(server: Server, tenant: Tenant) -> None:
    await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    retry = book_request(tenant, TUESDAY_9AM, request_id="9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a")
    for _ in range(2):  # refused both times: the refusal was not stored as a success
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.stub.Book(retry, metadata=tenant.auth)
        assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")


async def test_reschedule_may_overlap_its_own_buffered_time(
    server: Server, app: CalendarApp
) -> None:
    tenant = await make_tenant(
        app,
        defaults=EventDefaults(
            buffer_before=timedelta(minutes=15), buffer_after=timedelta(minutes=15)
        ),
    )
    ten = TUESDAY_9AM + timedelta(hours=1)
    booked = await server.stub.Book(book_request(tenant, ten), metadata=tenant.auth)
    moved = await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=booked.appointment.appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(ten + timedelta(minutes=30)),
            request_id="8a9b0c1d-2e3f-4a5b-9c6d-7e8f9a0b1c2d",
        ),
        metadata=tenant.auth,
    )
    assert moved.appointment.start_time == ts(ten + timedelta(minutes=30))
    async with app.deps.db.read() as session:
        claims = (await session.execute(select(t.TimeClaim.start_at, t.TimeClaim.end_at))).all()
    assert [(a, b) for a, b in claims] == [
        (ten + timedelta(minutes=15), ten + timedelta(minutes=75))
    ]
    # Replaying the reschedule returns the moved appointment and moves nothing.
    again = await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=booked.appointment.appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(ten + timedelta(minutes=30)),
            request_id="8a9b0c1d-2e3f-4a5b-9c6d-7e8f9a0b1c2d",
        ),
        metadata=tenant.auth,
    )
    assert again.appointment.update_time == moved.appointment.update_time


async def test_reschedule_into_a_taken_time_keeps_the_old_one(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    mine = await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM + timedelta(hours=2), caller=res.Caller(name="Other")),
        metadata=tenant.auth,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Reschedule(
            api.RescheduleRequest(
                appointment_id=mine.appointment.appointment_id,
                agent_id=tenant.agent_id,
                start_time=ts(TUESDAY_9AM + timedelta(hours=2)),
            ),
            metadata=tenant.auth,
        )
    assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
    got = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=mine.appointment.appointment_id),
        metadata=tenant.auth,
    )
    assert got.appointment.start_time == ts(TUESDAY_9AM)
    async with app.deps.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(t.TimeClaim)) == 2


async def test_list_appointments_pages_in_start_order(server: Server, tenant: Tenant) -> None:
    for hours in (3, 0, 1, 5, 2):
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM + timedelta(hours=hours)), metadata=tenant.auth
        )
    seen, token = [], ""
    while True:
        page = await server.stub.ListAppointments(
            api.ListAppointmentsRequest(agent_id=tenant.agent_id, page_size=2, page_token=token),
            metadata=tenant.auth,
        )
        assert len(page.appointments) <= 2
        seen += [a.start_time.ToDatetime().hour for a in page.appointments]
        token = page.next_page_token
        if not token:
            break
    assert seen == [14, 15, 16, 17, 19]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListAppointments(
            api.ListAppointmentsRequest(page_size=-1), metadata=tenant.auth
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "page_size"
