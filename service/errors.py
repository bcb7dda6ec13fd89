"""The error tree every layer raises; only ``service.api`` turns it into gRPC statuses.

Each error has a stable ``reason`` (the names in ``proto/gleam/calendar/v1/errors.proto``), a
``kind`` that fixes its gRPC code, a message safe to show (no secrets, no caller data) and
``metadata`` holding every dynamic value of the message (AIP-193)::

    CalendarError
    ├── InvalidArgument            INVALID_ARGUMENT   (names the field)
    │   ├── InvalidTimeRange
    │   └── RequestIdReused
    ├── NotFound                   NOT_FOUND
    ├── Unauthenticated            UNAUTHENTICATED
    ├── PermissionDenied           PERMISSION_DENIED  (SCOPE_DENIED, EVENT_TYPE_NOT_ALLOWED)
    ├── FailedPrecondition         FAILED_PRECONDITION
    │   ├── PlanRequired, CalendarNotConnected, CalendarDisabled, CredentialsRejected, ...
    ├── Aborted                    ABORTED
    │   ├── SlotUnavailable        (carries the nearest alternatives)
    │   ├── NoAvailableTimes
    │   └── RequestInProgress
    └── Unavailable                UNAVAILABLE        (the only kind clients retry)
        ├── ProviderUnavailable
        └── ProviderRateLimited
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from service.slots import Slot

ERROR_DOMAIN = "calendar.gleam.dev"


class Kind(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class CalendarError(Exception):
    kind: ClassVar[Kind] = Kind.INTERNAL
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(CalendarError):
    kind = Kind.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"{field}: {message}", reason=reason, metadata={"field": field})
        self.field = field
        self.description = message


class InvalidTimeRange(InvalidArgument):
    default_reason = "INVALID_TIME_RANGE"


class RequestIdReused(InvalidArgument):
    default_reason = "REQUEST_ID_REUSED"

    def __init__(self, request_id: str) -> None:
        super().__init__("request_id", "was already used for a different request")
        self.metadata["request_id"] = request_id


class NotFound(CalendarError):
    kind = Kind.NOT_FOUND
    default_reason = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_id: str) -> None:
        super().__init__(
            f"{resource_type} {resource_id!r} not found",
            metadata={"resource_type": resource_type, "resource_id": resource_id},
        )


class Unauthenticated(CalendarError):
    kind = Kind.UNAUTHENTICATED
    default_reason = "API_KEY_INVALID"


class PermissionDenied(CalendarError):
    kind = Kind.PERMISSION_DENIED


class ScopeDenied(PermissionDenied):
    default_reason = "SCOPE_DENIED"

    def __init__(self, agent_id: str, scope: str) -> None:
        super().__init__(
            f"agent {agent_id!r} lacks the {scope} scope",
            metadata={"agent_id": agent_id, "missing_scope": scope},
        )


class EventTypeNotAllowed(PermissionDenied):
    default_reason = "EVENT_TYPE_NOT_ALLOWED"

    def __init__(self, agent_id: str, event_type_id: str) -> None:
        super().__init__(
            f"agent {agent_id!r} may not book event type {event_type_id!r}",
            metadata={"agent_id": agent_id, "event_type_id": event_type_id},
        )


class FailedPrecondition(CalendarError):
    kind = Kind.FAILED_PRECONDITION


class PlanRequired(FailedPrecondition):
    default_reason = "PLAN_REQUIRED"

    def __init__(self, plan: str, required: Sequence[str]) -> None:
        super().__init__(
            f"calendar integration needs the {' or '.join(required)} plan; this account has {plan}",
            metadata={"plan": plan, "required_plans": ",".join(required)},
        )


class CalendarNotConnected(FailedPrecondition):
    default_reason = "CALENDAR_NOT_CONNECTED"

    def __init__(
        self, message: str, *, connection_id: str = "", provider: str = "", status: str = ""
    ) -> None:
        hint = "reconnect the calendar (re-authenticate, or verify API keys haven't expired)"
        super().__init__(
            f"{message}; {hint}",
            metadata={
                "connection_id": connection_id,
                "provider": provider,
                "connection_status": status,
                "hint": hint,
            },
        )


class CalendarDisabled(FailedPrecondition):
    default_reason = "CALENDAR_DISABLED"

    def __init__(self, agent_id: str) -> None:
        super().__init__(
            f"calendar access is disabled for agent {agent_id!r}", metadata={"agent_id": agent_id}
        )


class CredentialsRejected(FailedPrecondition):
    default_reason = "CREDENTIALS_REJECTED"

    def __init__(self, provider: str, detail: str) -> None:
        super().__init__(
            f"{provider} refused the credentials: {detail}", metadata={"provider": provider}
        )


class OperationNotSupported(FailedPrecondition):
    default_reason = "OPERATION_NOT_SUPPORTED"

    def __init__(self, provider: str, operation: str) -> None:
        super().__init__(
            f"{operation} is not supported for {provider} connections",
            metadata={"provider": provider, "operation": operation},
        )


class AppointmentNotActive(FailedPrecondition):
    default_reason = "APPOINTMENT_NOT_ACTIVE"

    def __init__(self, appointment_id: str, status: str) -> None:
        super().__init__(
            f"appointment {appointment_id!r} is {status}",
            metadata={"appointment_id": appointment_id, "status": status},
        )


class Aborted(CalendarError):
    kind = Kind.ABORTED


class SlotUnavailable(Aborted):
    default_reason = "SLOT_UNAVAILABLE"

    def __init__(self, requested: datetime, alternatives: Sequence[Slot]) -> None:
        alt = ",".join(s.start.isoformat() for s in alternatives)
        super().__init__(
            f"{requested.isoformat()} is not available",
            metadata={"start_time": requested.isoformat(), "alternatives": alt},
        )
        self.requested = requested
        self.alternatives = tuple(alternatives)
        # Zones for rendering the alternatives; the use case that knows them fills them in.
        self.time_zone = "UTC"
        self.caller_time_zone = ""


class NoAvailableTimes(Aborted):
    default_reason = "NO_AVAILABLE_TIMES"

    def __init__(self, requested: datetime) -> None:
        super().__init__(
            f"{requested.isoformat()} is not available and nothing else is free",
            metadata={"start_time": requested.isoformat(), "next_available_date": ""},
        )


class RequestInProgress(Aborted):
    default_reason = "REQUEST_IN_PROGRESS"

    def __init__(self, request_id: str, retry_after: float) -> None:
        super().__init__(
            "a request with this request_id is still in progress; retry shortly",
            metadata={"request_id": request_id},
        )
        self.retry_after = retry_after


class Unavailable(CalendarError):
    kind = Kind.UNAVAILABLE


class ProviderUnavailable(Unavailable):
    default_reason = "PROVIDER_UNAVAILABLE"

    def __init__(self, provider: str, detail: str = "did not answer in time") -> None:
        super().__init__(f"{provider} {detail}", metadata={"provider": provider})


class ProviderRateLimited(Unavailable):
    default_reason = "PROVIDER_RATE_LIMITED"

    def __init__(self, provider: str, retry_after: float) -> None:
        super().__init__(
            f"{provider} rate limit reached; retry in {retry_after:.0f} s",
            metadata={"provider": provider, "retry_after_seconds": f"{retry_after:.0f}"},
        )
        self.retry_after = retry_after


class Internal(CalendarError):
    kind = Kind.INTERNAL
