"""The seam between the use cases and every calendar system.

Two availability shapes exist: busy-based providers (built-in, Google) report busy intervals and
we compute slots; slot-based providers (Cal.com, Calendly) report the starts they would accept and
we intersect them with the agent's windows. ``availability_shape`` says which one an adapter is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from service.deadline import Deadline
from service.model import Caller, EventType, ProviderKind
from service.slots import Interval


class AvailabilityShape(enum.Enum):
    BUSY = "busy"
    SLOTS = "slots"


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    calendar_id: str
    summary: str
    primary: bool
    writable: bool
    time_zone: str = ""


@dataclass(frozen=True, slots=True)
class CalendarPage:
    calendars: tuple[CalendarInfo, ...]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    can_read_availability: bool
    can_create_events: bool
    can_modify_events: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EventRequest:
    """What a provider needs to create one appointment's event; nothing more (privacy)."""

    appointment_id: str
    calendar_id: str
    event_type: EventType
    start: datetime
    end: datetime
    title: str
    caller: Caller
    time_zone: str
    notes: str
    invite_caller: bool


@dataclass(frozen=True, slots=True)
class EventRef:
    """The provider's handle on an event (event id, booking uid, scheduled-event URI)."""

    reference: str


class CalendarProvider(Protocol):
    kind: ProviderKind
    availability_shape: AvailabilityShape

    async def check(self, deadline: Deadline) -> ConnectionCheck: ...

    async def list_calendars(
        self, page_size: int, page_token: str, deadline: Deadline
    ) -> CalendarPage: ...

    async def list_event_types(self, deadline: Deadline) -> tuple[EventType, ...]: ...

    async def busy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[Interval, ...]:
        """Busy intervals overlapping [start, end) (busy-based providers)."""
        ...

    async def open_starts(
        self, event_type: EventType, start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[datetime, ...]:
        """Starts the provider would accept in [start, end) (slot-based providers)."""
        ...

    async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef: ...

    async def find_event(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        """The event made for our appointment, if it exists (settles unknown outcomes)."""
        ...

    async def move_event(
        self, ref: EventRef, request: EventRequest, deadline: Deadline
    ) -> EventRef: ...

    async def cancel_event(self, ref: EventRef, deadline: Deadline) -> None:
        """Cancel; an event that is already gone counts as cancelled."""
        ...


def padded(start: datetime, end: datetime, before: timedelta, after: timedelta) -> Interval:
    return Interval(start - before, end + after)
