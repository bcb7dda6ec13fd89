"""The seam between the use cases and every calendar system.

Two availability shapes exist: busy-based providers (built-in, Google) report busy intervals and
we compute slots; slot-based providers (Cal.com, Calendly) report the starts they would accept and
we intersect them with the agent's windows. ``availability_shape`` says which one an adapter is.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from service.config import Settings
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
class ConnectedAccount:
    """What a provider says about fresh credentials: whose they are, what they may do."""

    external_account: str
    default_calendar_id: str = ""
    granted_scopes: tuple[str, ...] = ()
    # Non-secret facts the adapter needs later (user URI, organisation, username).
    provider_state: Mapping[str, Any] = field(default_factory=dict)


class ProviderAuthError(Exception):
    """The provider refused the credentials (401/403 on auth, invalid_grant).

    Adapters raise it; the registry's guard turns it into NEEDS_REAUTH plus
    CALENDAR_NOT_CONNECTED for stored connections, and Connect into CREDENTIALS_REJECTED.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything an adapter is built from: no globals, so tests point it at an emulator."""

    http: httpx.AsyncClient
    config: Settings
    credentials: str
    state: Mapping[str, Any]
    connection_id: str
    # The service's clock (tests fix it); adapters never read the wall clock themselves.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


AdapterFactory = Callable[[ProviderContext], "CalendarProvider"]


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
    # Events the provider still holds that must go (e.g. Calendly's old event after a
    # book-new-then-cancel-old reschedule whose cancel failed). The booking layer records them
    # on the appointment and the maintenance loop cancels them until the provider agrees.
    leftovers: tuple[str, ...] = ()


class CalendarProvider(Protocol):
    kind: ProviderKind
    availability_shape: AvailabilityShape

    async def identify(self, deadline: Deadline) -> ConnectedAccount:
        """Checks the credentials live and says whose they are (Connect)."""
        ...

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

    async def subscribe(
        self,
        callback_url: str,
        secret: str,
        deadline: Deadline,
        calendar_ids: tuple[str, ...] = (),
    ) -> Mapping[str, Any]:
        """Asks the provider to push changes to ``callback_url``, signed or tokened with
        ``secret``. ``calendar_ids`` are the calendars whose changes matter (the agents' booking
        and blocking calendars; empty: the default one) for providers that watch per calendar.
        Returns non-secret state to merge into ``provider_state`` (subscription id or URI,
        channel ids, resource ids, expiration) that ``unsubscribe`` gets back."""
        ...

    async def unsubscribe(self, state: Mapping[str, Any], deadline: Deadline) -> None:
        """Stops the pushes ``subscribe`` started; one already gone counts as stopped."""
        ...


def padded(start: datetime, end: datetime, before: timedelta, after: timedelta) -> Interval:
    return Interval(start - before, end + after)
