"""Proto messages <-> domain dataclasses. Input problems raise InvalidArgument naming the field."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2
from google.type import date_pb2, datetime_pb2, dayofweek_pb2, timeofday_pb2

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.errors import InvalidArgument
from service.model import (
    AgentSettings,
    Appointment,
    AppointmentStatus,
    Availability,
    BusyBlock,
    Caller,
    Confirmations,
    Connection,
    DateOverride,
    EventDefaults,
    EventType,
    Scope,
    Window,
)
from service.providers.base import CalendarInfo
from service.scheduling.availability import NoAvailability, SlotsAnswer
from service.slots import Slot, to_local, voice_label

# Proto weekday enum (MONDAY = 1 .. SUNDAY = 7) <-> index 0..6.
_WEEKDAYS = [
    dayofweek_pb2.MONDAY,
    dayofweek_pb2.TUESDAY,
    dayofweek_pb2.WEDNESDAY,
    dayofweek_pb2.THURSDAY,
    dayofweek_pb2.FRIDAY,
    dayofweek_pb2.SATURDAY,
    dayofweek_pb2.SUNDAY,
]
_PROVIDERS = {
    "BUILTIN": res.PROVIDER_BUILTIN,
    "GOOGLE": res.PROVIDER_GOOGLE,
    "CALCOM": res.PROVIDER_CALCOM,
    "CALENDLY": res.PROVIDER_CALENDLY,
}
_CONNECTION_STATUS = {
    "CONNECTED": res.CONNECTION_STATUS_CONNECTED,
    "NEEDS_REAUTH": res.CONNECTION_STATUS_NEEDS_REAUTH,
    "REVOKED": res.CONNECTION_STATUS_REVOKED,
}
_SCOPES = {
    Scope.READ_CALENDAR: res.SCOPE_READ_CALENDAR,
    Scope.CREATE_EVENTS: res.SCOPE_CREATE_EVENTS,
    Scope.RESCHEDULE_EVENTS: res.SCOPE_RESCHEDULE_EVENTS,
}
_SCOPES_BACK = {v: k for k, v in _SCOPES.items()}
_STATUS = {
    AppointmentStatus.PENDING: res.APPOINTMENT_STATUS_PENDING,
    AppointmentStatus.CONFIRMED: res.APPOINTMENT_STATUS_CONFIRMED,
    AppointmentStatus.CANCELLED: res.APPOINTMENT_STATUS_CANCELLED,
    AppointmentStatus.FAILED: res.APPOINTMENT_STATUS_FAILED,
}
_STATUS_BACK = {v: k for k, v in _STATUS.items()}
_NO_AVAILABILITY = {
    NoAvailability.FULLY_BOOKED: api.NO_AVAILABILITY_REASON_FULLY_BOOKED,
    NoAvailability.OUTSIDE_BUSINESS_HOURS: api.NO_AVAILABILITY_REASON_OUTSIDE_BUSINESS_HOURS,
    NoAvailability.INSIDE_NOTICE_PERIOD: api.NO_AVAILABILITY_REASON_INSIDE_NOTICE_PERIOD,
    NoAvailability.BEYOND_ADVANCE_WINDOW: api.NO_AVAILABILITY_REASON_BEYOND_ADVANCE_WINDOW,
    NoAvailability.DAILY_CAP_REACHED: api.NO_AVAILABILITY_REASON_DAILY_CAP_REACHED,
    NoAvailability.IN_THE_PAST: api.NO_AVAILABILITY_REASON_IN_THE_PAST,
}


# Scalars -----------------------------------------------------------------------------------


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value.astimezone(UTC))
    return out


def from_ts(message: timestamp_pb2.Timestamp, field: str) -> datetime:
    if message.seconds == 0 and message.nanos == 0:
        raise InvalidArgument(field, "is required")
    try:
        return message.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(field, "is not a valid timestamp") from exc


def dur(value: timedelta) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromTimedelta(value)
    return out


def from_dur(message: duration_pb2.Duration, field: str) -> timedelta:
    if message.seconds < 0 or message.nanos < 0:
        raise InvalidArgument(field, "must not be negative")
    if message.nanos:
        # The slot engine works in whole seconds; a fraction is a client bug, not a rounding.
        raise InvalidArgument(field, "must be a whole number of seconds")
    return message.ToTimedelta()


def pb_date(value: date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def from_date(message: date_pb2.Date, field: str) -> date:
    try:
        return date(message.year, message.month, message.day)
    except ValueError as exc:
        raise InvalidArgument(field, "is not a valid calendar date") from exc


def local_datetime(instant: datetime, tz_name: str) -> datetime_pb2.DateTime:
    local = to_local(instant, tz_name)
    return datetime_pb2.DateTime(
        year=local.year,
        month=local.month,
        day=local.day,
        hours=local.hour,
        minutes=local.minute,
        seconds=local.second,
        time_zone=datetime_pb2.TimeZone(id=tz_name),
    )


def _minute(message: timeofday_pb2.TimeOfDay, field: str) -> int:
    if message.seconds or message.nanos:
        raise InvalidArgument(field, "must be whole minutes")
    if not (0 <= message.hours <= 24 and 0 <= message.minutes < 60):
        raise InvalidArgument(field, "must be between 00:00 and 24:00")
    minute = message.hours * 60 + message.minutes
    if minute > 1440:
        raise InvalidArgument(field, "must be between 00:00 and 24:00")
    return minute


def _time_of_day(minute: int) -> timeofday_pb2.TimeOfDay:
    return timeofday_pb2.TimeOfDay(hours=minute // 60, minutes=minute % 60)


# Slots -------------------------------------------------------------------------------------


# A slot's message depends only on the slot and the two zones, and the same few slots are
# offered again and again during calls: converting each once (timestamps, local times, the
# spoken label) takes a third of a warm ListSlots off the hot path. Callers copy the message
# into their response (protobuf copies on assignment), so the cached one is never changed.
@functools.lru_cache(maxsize=8192)
def slot(value: Slot, business_tz: str, caller_tz: str) -> res.Slot:
    return res.Slot(
        start_time=ts(value.start),
        end_time=ts(value.end),
        business_time=local_datetime(value.start, business_tz),
        caller_time=local_datetime(value.start, caller_tz),
        label=voice_label(value.start, caller_tz),
    )


def slots_response(answer: SlotsAnswer) -> api.ListSlotsResponse:
    b, c = answer.time_zone, answer.caller_time_zone
    out = api.ListSlotsResponse(
        slots=[slot(s, b, c) for s in answer.slots],
        requested_time_available=answer.requested_available,
        alternatives=[slot(s, b, c) for s in answer.alternatives],
        time_zone=b,
        from_cache=answer.from_cache,
        data_age=dur(answer.data_age),
        stale=answer.stale,
    )
    if answer.no_availability is not None:
        out.no_availability_reason = _NO_AVAILABILITY[answer.no_availability]
    if answer.next_available_date is not None:
        out.next_available_date.CopyFrom(pb_date(answer.next_available_date))
    return out


# Resources ---------------------------------------------------------------------------------


def connection(c: Connection) -> res.Connection:
    return res.Connection(
        connection_id=c.connection_id,
        provider=_PROVIDERS[c.provider.value],
        status=_CONNECTION_STATUS[c.status.value],
        display_name=c.display_name,
        external_account=c.external_account,
        default_calendar_id=c.default_calendar_id,
        granted_scopes=list(c.granted_scopes),
        status_detail=c.status_detail,
        create_time=ts(c.created_at),
        update_time=ts(c.updated_at),
    )


def calendar(c: CalendarInfo) -> res.Calendar:
    return res.Calendar(
        calendar_id=c.calendar_id,
        summary=c.summary,
        primary=c.primary,
        writable=c.writable,
        time_zone=c.time_zone,
    )


def event_type(e: EventType) -> res.EventType:
    return res.EventType(
        event_type_id=e.event_type_id,
        connection_id=e.connection_id,
        title=e.title,
        slug=e.slug,
        duration=dur(e.duration),
        buffer_before=dur(e.buffer_before),
        buffer_after=dur(e.buffer_after),
        active=e.active,
    )


def from_event_type(m: res.EventType) -> EventType:
    return EventType(
        event_type_id="",
        connection_id="",
        title=m.title,
        slug=m.slug,
        duration=from_dur(m.duration, "event_type.duration"),
        buffer_before=from_dur(m.buffer_before, "event_type.buffer_before"),
        buffer_after=from_dur(m.buffer_after, "event_type.buffer_after"),
    )


def appointment(a: Appointment) -> res.Appointment:
    return res.Appointment(
        appointment_id=a.appointment_id,
        agent_id=a.agent_id,
        connection_id=a.connection_id,
        calendar_id=a.calendar_id,
        event_type_id=a.event_type_id,
        status=_STATUS[a.status],
        start_time=ts(a.start),
        end_time=ts(a.end),
        time_zone=a.time_zone,
        caller=res.Caller(
            name=a.caller.name,
            email=a.caller.email,
            phone=a.caller.phone,
            time_zone=a.caller.time_zone,
        ),
        title=a.title,
        notes=a.notes,
        provider_reference=a.provider_reference,
        call_id=a.call_id,
        create_time=ts(a.created_at),
        update_time=ts(a.updated_at),
    )


def appointment_slot(a: Appointment) -> res.Slot:
    return slot(Slot(a.start, a.end), a.time_zone, a.caller.time_zone or a.time_zone)


def statuses(values: list[int]) -> tuple[AppointmentStatus, ...]:
    out = []
    for i, v in enumerate(values):
        if v not in _STATUS_BACK:
            raise InvalidArgument(f"statuses[{i}]", "unknown status")
        out.append(_STATUS_BACK[v])  # type: ignore[index]
    return tuple(out)


def caller(m: res.Caller) -> Caller:
    return Caller(name=m.name, email=m.email, phone=m.phone, time_zone=m.time_zone)


def busy_block(b: BusyBlock) -> res.BusyBlock:
    return res.BusyBlock(
        busy_block_id=b.busy_block_id,
        connection_id=b.connection_id,
        calendar_id=b.calendar_id,
        start_time=ts(b.start),
        end_time=ts(b.end),
        label=b.label,
    )


def from_busy_block(m: res.BusyBlock) -> BusyBlock:
    if not m.connection_id:
        raise InvalidArgument("busy_block.connection_id", "is required")
    return BusyBlock(
        busy_block_id="",
        connection_id=m.connection_id,
        calendar_id=m.calendar_id,
        start=from_ts(m.start_time, "busy_block.start_time"),
        end=from_ts(m.end_time, "busy_block.end_time"),
        label=m.label,
    )


# Agent settings ----------------------------------------------------------------------------


def settings(s: AgentSettings) -> res.AgentCalendarSettings:
    a, e, c = s.availability, s.event_defaults, s.confirmations
    out = res.AgentCalendarSettings(
        agent_id=s.agent_id,
        enabled=s.enabled,
        connection_id=s.connection_id,
        calendar_id=s.calendar_id,
        blocking_calendar_ids=list(s.blocking_calendar_ids),
        allowed_event_type_ids=list(s.allowed_event_type_ids),
        scopes=sorted(_SCOPES[x] for x in s.scopes),
        availability=res.Availability(
            time_zone=a.time_zone,
            weekly_hours=[
                res.DayHours(
                    day=_WEEKDAYS[i],
                    windows=[
                        res.TimeWindow(
                            start_time=_time_of_day(w.start_minute),
                            end_time=_time_of_day(w.end_minute),
                        )
                        for w in windows
                    ],
                )
                for i, windows in enumerate(a.weekly_hours)
                if windows
            ],
            date_overrides=[
                res.DateOverride(
                    date=pb_date(o.day),
                    windows=[
                        res.TimeWindow(
                            start_time=_time_of_day(w.start_minute),
                            end_time=_time_of_day(w.end_minute),
                        )
                        for w in o.windows
                    ],
                    label=o.label,
                )
                for o in a.date_overrides
            ],
            minimum_notice=dur(a.minimum_notice),
            max_advance_days=a.max_advance_days,
            daily_cap=a.daily_cap,
        ),
        event_defaults=res.EventDefaults(
            duration=dur(e.duration),
            buffer_before=dur(e.buffer_before),
            buffer_after=dur(e.buffer_after),
            slot_step=dur(e.slot_step),
            title_template=e.title_template,
        ),
        confirmations=res.ConfirmationChannels(
            email=c.email,
            sms=c.sms,
            calendar_invite=c.calendar_invite,
            business_email=c.business_email,
        ),
        business_name=s.business_name,
    )
    if s.updated_at is not None:
        out.update_time.CopyFrom(ts(s.updated_at))
    return out


def _windows(items: list[res.TimeWindow], field: str) -> tuple[Window, ...]:
    return tuple(
        Window(
            _minute(w.start_time, f"{field}[{i}].start_time"),
            _minute(w.end_time, f"{field}[{i}].end_time"),
        )
        for i, w in enumerate(items)
    )


def from_settings(m: res.AgentCalendarSettings) -> AgentSettings:
    f = "settings.availability"
    weekly: list[tuple[Window, ...]] = [()] * 7
    for i, day in enumerate(m.availability.weekly_hours):
        if day.day not in _WEEKDAYS:
            raise InvalidArgument(f"{f}.weekly_hours[{i}].day", "must be MONDAY to SUNDAY")
        index = _WEEKDAYS.index(day.day)
        if weekly[index]:
            raise InvalidArgument(f"{f}.weekly_hours[{i}].day", "this weekday is listed twice")
        weekly[index] = _windows(list(day.windows), f"{f}.weekly_hours[{i}].windows")
    overrides = tuple(
        DateOverride(
            from_date(o.date, f"{f}.date_overrides[{i}].date"),
            _windows(list(o.windows), f"{f}.date_overrides[{i}].windows"),
            o.label,
        )
        for i, o in enumerate(m.availability.date_overrides)
    )
    scopes = set()
    for i, sc in enumerate(m.scopes):
        if sc not in _SCOPES_BACK:
            raise InvalidArgument(f"settings.scopes[{i}]", "unknown scope")
        scopes.add(_SCOPES_BACK[sc])
    e = m.event_defaults
    return AgentSettings(
        agent_id=m.agent_id,
        enabled=m.enabled,
        connection_id=m.connection_id,
        calendar_id=m.calendar_id,
        blocking_calendar_ids=tuple(m.blocking_calendar_ids),
        allowed_event_type_ids=tuple(m.allowed_event_type_ids),
        scopes=frozenset(scopes),
        availability=Availability(
            time_zone=m.availability.time_zone,
            weekly_hours=tuple(weekly),
            date_overrides=overrides,
            minimum_notice=from_dur(m.availability.minimum_notice, f"{f}.minimum_notice"),
            max_advance_days=m.availability.max_advance_days,
            daily_cap=m.availability.daily_cap,
        ),
        event_defaults=EventDefaults(
            duration=from_dur(e.duration, "settings.event_defaults.duration"),
            buffer_before=from_dur(e.buffer_before, "settings.event_defaults.buffer_before"),
            buffer_after=from_dur(e.buffer_after, "settings.event_defaults.buffer_after"),
            slot_step=from_dur(e.slot_step, "settings.event_defaults.slot_step"),
            title_template=e.title_template,
        ),
        confirmations=Confirmations(
            m.confirmations.email,
            m.confirmations.sms,
            m.confirmations.calendar_invite,
            m.confirmations.business_email.strip(),
        ),
        business_name=m.business_name,
    )
