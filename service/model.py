"""Plain domain types shared by every layer: enums and frozen dataclasses, no behaviour, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


class Plan(enum.StrEnum):
    FREE = "FREE"
    STARTER = "STARTER"
    PROFESSIONAL = "PROFESSIONAL"
    ENTERPRISE = "ENTERPRISE"


CALENDAR_PLANS = (Plan.PROFESSIONAL, Plan.ENTERPRISE)


class ProviderKind(enum.StrEnum):
    BUILTIN = "BUILTIN"
    GOOGLE = "GOOGLE"
    CALCOM = "CALCOM"
    CALENDLY = "CALENDLY"


class ConnectionStatus(enum.StrEnum):
    CONNECTED = "CONNECTED"
    NEEDS_REAUTH = "NEEDS_REAUTH"
    REVOKED = "REVOKED"


class Scope(enum.StrEnum):
    READ_CALENDAR = "READ_CALENDAR"
    CREATE_EVENTS = "CREATE_EVENTS"
    RESCHEDULE_EVENTS = "RESCHEDULE_EVENTS"


class AppointmentStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


ACTIVE_STATUSES = (AppointmentStatus.PENDING, AppointmentStatus.CONFIRMED)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of an RPC: one account (tenant)."""

    account_id: str
    plan: Plan


@dataclass(frozen=True, slots=True)
class Connection:
    connection_id: str
    account_id: str
    provider: ProviderKind
    status: ConnectionStatus
    display_name: str
    external_account: str
    default_calendar_id: str
    granted_scopes: tuple[str, ...]
    status_detail: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EventType:
    event_type_id: str
    connection_id: str
    title: str
    slug: str
    duration: timedelta
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    active: bool = True
    # The provider's own id or URI (Cal.com id, Calendly URI); empty for ours.
    provider_ref: str = ""


@dataclass(frozen=True, slots=True)
class Window:
    """Local wall-time window in minutes after midnight; 1440 is 24:00."""

    start_minute: int
    end_minute: int


@dataclass(frozen=True, slots=True)
class DateOverride:
    day: date
    windows: tuple[Window, ...]
    label: str = ""


@dataclass(frozen=True, slots=True)
class Availability:
    time_zone: str = "UTC"
    # Index 0 is Monday; seven entries.
    weekly_hours: tuple[tuple[Window, ...], ...] = ((),) * 7
    date_overrides: tuple[DateOverride, ...] = ()
    minimum_notice: timedelta = timedelta(0)
    max_advance_days: int = 0
    daily_cap: int = 0


@dataclass(frozen=True, slots=True)
class EventDefaults:
    duration: timedelta = timedelta(minutes=30)
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    slot_step: timedelta = timedelta(0)
    title_template: str = "Appointment with {caller_name}"


@dataclass(frozen=True, slots=True)
class Confirmations:
    email: bool = True
    sms: bool = False
    calendar_invite: bool = True
    # Where the built-in calendar's invite goes (the business's own inbox); empty: no invite.
    business_email: str = ""


@dataclass(frozen=True, slots=True)
class AgentSettings:
    agent_id: str
    enabled: bool = False
    connection_id: str = ""
    calendar_id: str = ""
    blocking_calendar_ids: tuple[str, ...] = ()
    allowed_event_type_ids: tuple[str, ...] = ()
    scopes: frozenset[Scope] = frozenset()
    availability: Availability = field(default_factory=Availability)
    event_defaults: EventDefaults = field(default_factory=EventDefaults)
    confirmations: Confirmations = field(default_factory=Confirmations)
    business_name: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    email: str = ""
    phone: str = ""
    time_zone: str = ""


@dataclass(frozen=True, slots=True)
class Appointment:
    appointment_id: str
    account_id: str
    agent_id: str
    connection_id: str
    calendar_id: str
    event_type_id: str
    status: AppointmentStatus
    start: datetime
    end: datetime
    time_zone: str
    caller: Caller
    title: str
    notes: str
    provider_reference: str
    call_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BusyBlock:
    busy_block_id: str
    connection_id: str
    calendar_id: str
    start: datetime
    end: datetime
    label: str
