"""Every CalendarService RPC through the generated async stub on an in-process server."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Tenant, assert_error, book_request

TUESDAY = {"year": 2026, "month": 11, "day": 24}
SATURDAY = {"year": 2026, "month": 11, "day": 28}


async def test_connect_builtin_then_list_get_test_disconnect(
    server: Server, tenant: Tenant
) -> None:
    created = await server.stub.Connect(
        api.ConnectRequest(
            display_name="Back office", builtin=api.BuiltinCalendar(calendar_name="Back")
        ),
        metadata=tenant.auth,
    )
    conn = created.connection
    assert conn.provider == res.PROVIDER_BUILTIN
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    assert conn.default_calendar_id

    page1 = await server.stub.ListConnections(
        api.ListConnectionsRequest(page_size=1), metadata=tenant.auth
    )
    assert len(page1.connections) == 1
    assert page1.next_page_token
    page2 = await server.stub.ListConnections(
        api.ListConnectionsRequest(page_size=1, page_token=page1.next_page_token),
        metadata=tenant.auth,
    )
    assert len(page2.connections) == 1
    assert page2.next_page_token == ""
    ids = {page1.connections[0].connection_id, page2.connections[0].connection_id}
    assert ids == {conn.connection_id, tenant.connection_id}

    got = await server.stub.GetConnection(
        api.GetConnectionRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert got.connection.display_name == "Back office"

    checked = await server.stub.TestConnection(
        api.TestConnectionRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert checked.ok
    assert checked.can_read_availability
    assert checked.can_create_events

    gone = await server.stub.Disconnect(
        api.DisconnectRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert gone.connection.status == res.CONNECTION_STATUS_REVOKED
    after = await server.stub.TestConnection(
        api.TestConnectionRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert not after.ok
    assert "disconnected" in after.detail


async def test_connect_needs_exactly_one_credential(server: Server, tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Connect(api.ConnectRequest(), metadata=tenant.auth)
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "credentials"


async def test_google_without_client_configuration_says_so(server: Server, tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.GetGoogleConsentUrl(
            api.GetGoogleConsentUrlRequest(), metadata=tenant.auth
        )
    info = assert_error(
        caught.value, grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_NOT_CONFIGURED"
    )
    assert info.metadata["provider"] == "GOOGLE"


async def test_calendars_and_event_types(server: Server, tenant: Tenant) -> None:
    cals = await server.stub.ListCalendars(
        api.ListCalendarsRequest(connection_id=tenant.connection_id), metadata=tenant.auth
    )
    assert [c.calendar_id for c in cals.calendars] == [tenant.calendar_id]
    assert cals.calendars[0].primary
    assert cals.calendars[0].writable

    created = await server.stub.CreateEventType(
        api.CreateEventTypeRequest(
            connection_id=tenant.connection_id,
            event_type=res.EventType(
                title="Consultation", duration=duration_pb2.Duration(seconds=15 * 60)
            ),
        ),
        metadata=tenant.auth,
    )
    assert created.event_type.slug == "consultation"
    types = await server.stub.ListEventTypes(
        api.ListEventTypesRequest(connection_id=tenant.connection_id), metadata=tenant.auth
    )
    by_title = {e.title: e.duration.seconds for e in types.event_types}
    assert by_title == {"Appointment": 1800, "Consultation": 900}

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.CreateEventType(
            api.CreateEventTypeRequest(
                connection_id=tenant.connection_id,
                event_type=res.EventType(
                    title="Too long", duration=duration_pb2.Duration(seconds=9 * 3600)
                ),
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "event_type.duration"


async def test_settings_get_and_update_with_field_mask(server: Server, tenant: Tenant) -> None:
    got = await server.stub.GetAgentCalendarSettings(
        api.GetAgentCalendarSettingsRequest(agent_id=tenant.agent_id), metadata=tenant.auth
    )
    assert got.settings.enabled
    assert got.settings.availability.time_zone == "America/New_York"
    assert len(got.settings.availability.weekly_hours) == 5

    update = res.AgentCalendarSettings(agent_id=tenant.agent_id)
    update.availability.time_zone = "Europe/Berlin"
    update.business_name = "ignored: not in the mask"
    saved = await server.stub.UpdateAgentCalendarSettings(
        api.UpdateAgentCalendarSettingsRequest(
            settings=update, update_mask=field_mask_pb2.FieldMask(paths=["availability.time_zone"])
        ),
        metadata=tenant.auth,
    )
    assert saved.settings.availability.time_zone == "Europe/Berlin"
    assert saved.settings.business_name == "Acme Dental"
    assert len(saved.settings.availability.weekly_hours) == 5  # untouched by the mask

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.UpdateAgentCalendarSettings(
            api.UpdateAgentCalendarSettingsRequest(
                settings=update, update_mask=field_mask_pb2.FieldMask(paths=["no_such_field"])
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "update_mask.paths[0]"


@pytest.mark.parametrize(
    ("path", "mutate", "field"),
    [
        (
            "availability.time_zone",
            lambda s: setattr(s.availability, "time_zone", "Mars/Olympus"),
            "settings.availability.time_zone",
        ),
        (
            "event_defaults.duration",
            lambda s: s.event_defaults.duration.FromTimedelta(timedelta(minutes=3)),
            "settings.event_defaults.duration",
        ),
        (
            "event_defaults.duration",
            lambda s: s.event_defaults.duration.FromTimedelta(timedelta(minutes=481)),
            "settings.event_defaults.duration",
        ),
        (
            "event_defaults.title_template",
            lambda s: setattr(s.event_defaults, "title_template", "Visit {caller_ssn}"),
            "settings.event_defaults.title_template",
        ),
        (
            "event_defaults.title_template",
            lambda s: setattr(s.event_defaults, "title_template", "Visit {caller_name"),
            "settings.event_defaults.title_template",
        ),
        (
            "availability.weekly_hours",
            lambda s: s.availability.weekly_hours.add(
                day=1, windows=[{"start_time": {"hours": 9}, "end_time": {"hours": 9}}]
            ),
            "settings.availability.weekly_hours[0].windows[0]",
        ),
        (
            "availability.weekly_hours",
            lambda s: s.availability.weekly_hours.add(
                day=1, windows=[{"start_time": {"hours": 25}, "end_time": {"hours": 9}}]
            ),
            "settings.availability.weekly_hours[0].windows[0].start_time",
        ),
    ],
    ids=[
        "zone",
        "too-short",
        "too-long",
        "placeholder",
        "malformed-template",
        "empty-window",
        "hour-25",
    ],
)
async def test_invalid_settings_name_the_field(
    server: Server, tenant: Tenant, path: str, mutate: object, field: str
) -> None:
    update = res.AgentCalendarSettings(agent_id=tenant.agent_id)
    mutate(update)  # type: ignore[operator]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.UpdateAgentCalendarSettings(
            api.UpdateAgentCalendarSettingsRequest(
                settings=update, update_mask=field_mask_pb2.FieldMask(paths=[path])
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == field
    # Nothing was written.
    got = await server.stub.GetAgentCalendarSettings(
        api.GetAgentCalendarSettingsRequest(agent_id=tenant.agent_id), metadata=tenant.auth
    )
    assert got.settings.availability.time_zone == "America/New_York"
    assert got.settings.event_defaults.title_template == "Appointment with {caller_name}"


async def test_list_slots_for_a_date_and_a_range(server: Server, tenant: Tenant) -> None:
    day = await server.stub.ListSlots(
        api.ListSlotsRequest(
            agent_id=tenant.agent_id, date=TUESDAY, caller_time_zone="America/Chicago"
        ),
        metadata=tenant.auth,
    )
    assert len(day.slots) == 16  # 9:00 to 16:30, every 30 minutes
    first = day.slots[0]
    assert first.start_time.ToDatetime().isoformat() == "2026-11-24T14:00:00"
    assert (first.business_time.hours, first.caller_time.hours) == (9, 8)
    assert first.label == "Tuesday, November 24 at 8:00 AM"
    assert day.time_zone == "America/New_York"

    spread = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY, max_results=3),
        metadata=tenant.auth,
    )
    hours = [s.business_time.hours for s in spread.slots]
    assert len(hours) == 3
    assert hours[0] == 9
    assert hours[-1] >= 15

    week = await server.stub.ListSlots(
        api.ListSlotsRequest(
            agent_id=tenant.agent_id,
            time_range=api.TimeRange(
                start_time=ts(TUESDAY_9AM), end_time=ts(TUESDAY_9AM + timedelta(days=7))
            ),
        ),
        metadata=tenant.auth,
    )
    assert len(week.slots) == 16 * 5


async def test_list_slots_explains_an_empty_day(server: Server, tenant: Tenant) -> None:
    closed = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=SATURDAY), metadata=tenant.auth
    )
    assert list(closed.slots) == []
    assert closed.no_availability_reason == api.NO_AVAILABILITY_REASON_OUTSIDE_BUSINESS_HOURS
    assert (
        closed.next_available_date.year,
        closed.next_available_date.month,
        closed.next_available_date.day,
    ) == (2026, 11, 30)


async def test_requested_time_taken_offers_nearest(server: Server, tenant: Tenant) -> None:
    three_pm = TUESDAY_9AM + timedelta(hours=6)
    await server.stub.Book(book_request(tenant, three_pm), metadata=tenant.auth)
    answer = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY, requested_time=ts(three_pm)),
        metadata=tenant.auth,
    )
    assert not answer.requested_time_available
    alt = sorted(a.business_time.hours * 60 + a.business_time.minutes for a in answer.alternatives)
    # Nearest first; of two equally near times the earlier wins.
    assert alt == [14 * 60, 14 * 60 + 30, 15 * 60 + 30]


async def test_bad_ranges_are_invalid_time_range(server: Server, tenant: Tenant) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListSlots(
            api.ListSlotsRequest(
                agent_id=tenant.agent_id,
                time_range=api.TimeRange(start_time=ts(TUESDAY_9AM), end_time=ts(TUESDAY_9AM)),
            ),
            metadata=tenant.auth,
        )
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TIME_RANGE")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListSlots(
            api.ListSlotsRequest(
                agent_id=tenant.agent_id,
                time_range=api.TimeRange(
                    start_time=ts(TUESDAY_9AM), end_time=ts(TUESDAY_9AM + timedelta(days=90))
                ),
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TIME_RANGE")
    assert info.metadata["max_days"] == "62"


async def test_book_get_list_reschedule_cancel(server: Server, tenant: Tenant) -> None:
    booked = await server.stub.Book(
        book_request(tenant, TUESDAY_9AM, request_id="4b8e0f8a-1f47-4a3b-9c55-0d3a8f1e2b11"),
        metadata=tenant.auth,
    )
    appt = booked.appointment
    assert appt.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert appt.title == "Appointment with Pat Caller"
    assert booked.slot.label == "Tuesday, November 24 at 9:00 AM"

    got = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=appt.appointment_id), metadata=tenant.auth
    )
    assert got.appointment.caller.email == "pat@example.com"

    moved = await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appt.appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(TUESDAY_9AM + timedelta(minutes=30)),
            call_id="call-2",
        ),
        metadata=tenant.auth,
    )
    assert moved.appointment.start_time.ToDatetime().isoformat() == "2026-11-24T14:30:00"
    # The old time is free again, the new one taken.
    slots = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY), metadata=tenant.auth
    )
    starts = [s.business_time.hours * 60 + s.business_time.minutes for s in slots.slots]
    assert 9 * 60 in starts
    assert 9 * 60 + 30 not in starts

    listed = await server.stub.ListAppointments(
        api.ListAppointmentsRequest(
            agent_id=tenant.agent_id, statuses=[res.APPOINTMENT_STATUS_CONFIRMED]
        ),
        metadata=tenant.auth,
    )
    assert [a.appointment_id for a in listed.appointments] == [appt.appointment_id]

    cancelled = await server.stub.Cancel(
        api.CancelRequest(appointment_id=appt.appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    assert cancelled.appointment.status == res.APPOINTMENT_STATUS_CANCELLED
    again = await server.stub.Cancel(
        api.CancelRequest(appointment_id=appt.appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    assert again.appointment.status == res.APPOINTMENT_STATUS_CANCELLED
    slots = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY), metadata=tenant.auth
    )
    assert len(slots.slots) == 16

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Reschedule(
            api.RescheduleRequest(
                appointment_id=appt.appointment_id,
                agent_id=tenant.agent_id,
                start_time=ts(TUESDAY_9AM + timedelta(hours=2)),
            ),
            metadata=tenant.auth,
        )
    assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "APPOINTMENT_NOT_ACTIVE")


async def test_booking_a_taken_time_is_slot_unavailable(server: Server, tenant: Tenant) -> None:
    await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(
            book_request(tenant, TUESDAY_9AM, caller=res.Caller(name="Someone Else")),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
    assert info.metadata["alternatives"].startswith("2026-11-24T14:30:00")


async def test_busy_blocks(server: Server, tenant: Tenant) -> None:
    lunch = await server.stub.CreateBusyBlock(
        api.CreateBusyBlockRequest(
            busy_block=res.BusyBlock(
                connection_id=tenant.connection_id,
                start_time=ts(TUESDAY_9AM + timedelta(hours=3)),
                end_time=ts(TUESDAY_9AM + timedelta(hours=4)),
                label="Lunch",
            )
        ),
        metadata=tenant.auth,
    )
    listed = await server.stub.ListBusyBlocks(
        api.ListBusyBlocksRequest(
            connection_id=tenant.connection_id,
            time_range=api.TimeRange(
                start_time=ts(TUESDAY_9AM), end_time=ts(TUESDAY_9AM + timedelta(days=1))
            ),
        ),
        metadata=tenant.auth,
    )
    assert [b.label for b in listed.busy_blocks] == ["Lunch"]
    slots = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY), metadata=tenant.auth
    )
    hours = {s.business_time.hours for s in slots.slots}
    assert 12 not in hours
    assert len(slots.slots) == 14

    await server.stub.DeleteBusyBlock(
        api.DeleteBusyBlockRequest(busy_block_id=lunch.busy_block.busy_block_id),
        metadata=tenant.auth,
    )
    await server.stub.DeleteBusyBlock(
        api.DeleteBusyBlockRequest(busy_block_id=lunch.busy_block.busy_block_id),
        metadata=tenant.auth,
    )
    slots = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY), metadata=tenant.auth
    )
    assert len(slots.slots) == 16


async def test_prepare_call(server: Server, tenant: Tenant) -> None:
    warmed = await server.stub.PrepareCall(
        api.PrepareCallRequest(agent_id=tenant.agent_id, call_id="c1"), metadata=tenant.auth
    )
    assert warmed.warmed


async def test_creations_are_idempotent_by_request_id(server: Server, tenant: Tenant) -> None:
    connect = api.ConnectRequest(
        request_id="5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
        display_name="Annex",
        builtin=api.BuiltinCalendar(calendar_name="Annex"),
    )
    first = await server.stub.Connect(connect, metadata=tenant.auth)
    again = await server.stub.Connect(connect, metadata=tenant.auth)
    assert first.connection.connection_id == again.connection.connection_id
    listed = await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=tenant.auth)
    assert len(listed.connections) == 2

    block = api.CreateBusyBlockRequest(
        request_id="6f7a8b9c-0d1e-4f2a-b3c4-d5e6f7a8b9c0",
        busy_block=res.BusyBlock(
            connection_id=tenant.connection_id,
            start_time=ts(TUESDAY_9AM),
            end_time=ts(TUESDAY_9AM + timedelta(hours=1)),
        ),
    )
    b1 = await server.stub.CreateBusyBlock(block, metadata=tenant.auth)
    b2 = await server.stub.CreateBusyBlock(block, metadata=tenant.auth)
    assert b1.busy_block.busy_block_id == b2.busy_block.busy_block_id

    block.busy_block.label = "changed"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.CreateBusyBlock(block, metadata=tenant.auth)
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")


async def test_fractional_durations_are_invalid_not_internal(
    server: Server, tenant: Tenant
) -> None:
    update = res.AgentCalendarSettings(agent_id=tenant.agent_id)
    update.event_defaults.buffer_after.CopyFrom(duration_pb2.Duration(seconds=60, nanos=5))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.UpdateAgentCalendarSettings(
            api.UpdateAgentCalendarSettingsRequest(
                settings=update,
                update_mask=field_mask_pb2.FieldMask(paths=["event_defaults.buffer_after"]),
            ),
            metadata=tenant.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "settings.event_defaults.buffer_after"
