"""Typed exceptions for gleam-calendar RPC errors, and their conversion from ``grpc.RpcError``.

Only the exception hierarchy and the code that reads a ``google.rpc.Status`` into it live here;
when to retry is the client's decision (``gleam.calendar.client``). Modelled on google-api-core's
``exceptions`` module: one class per gRPC code, each exposing the status's ``ErrorInfo``::

    CalendarError                  any code without a class of its own (e.g. RESOURCE_EXHAUSTED)
    ├── InvalidArgumentError       INVALID_ARGUMENT
    ├── NotFoundError              NOT_FOUND
    ├── AlreadyExistsError         ALREADY_EXISTS
    ├── FailedPreconditionError    FAILED_PRECONDITION
    ├── PermissionDeniedError      PERMISSION_DENIED
    ├── UnauthenticatedError       UNAUTHENTICATED
    ├── AbortedError               ABORTED
    │   └── SlotUnavailableError   reason SLOT_UNAVAILABLE (carries the nearest alternatives)
    ├── UnavailableError           UNAVAILABLE
    ├── DeadlineExceededError      DEADLINE_EXCEEDED
    └── InternalError              INTERNAL

Reasons are the names in ``proto/gleam/calendar/v1/errors.proto`` without the ``ERROR_REASON_``
prefix; they are stable, messages are not, so match on ``reason``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Final, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from gleam.calendar.v1 import resources_pb2

__all__ = [
    "ERROR_DOMAIN",
    "AbortedError",
    "AlreadyExistsError",
    "CalendarError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "SlotUnavailableError",
    "UnauthenticatedError",
    "UnavailableError",
    "from_rpc_error",
]

ERROR_DOMAIN: Final = "calendar.gleam.dev"
"""``google.rpc.ErrorInfo.domain`` of every error this service returns."""

_SLOT_UNAVAILABLE: Final = "SLOT_UNAVAILABLE"

_M = TypeVar("_M", bound=Message)


class CalendarError(Exception):
    """A failed CalendarService call.

    ``details`` holds every ``google.rpc.Status`` detail as sent, including kinds this module
    does not read; the attributes below are taken from the first ``ErrorInfo``, the first
    ``RetryInfo`` and all ``BadRequest`` details.
    """

    grpc_status_code: ClassVar[grpc.StatusCode | None] = None
    """The code this class stands for; None on the base class, which takes any code."""

    code: grpc.StatusCode
    message: str
    reason: str
    """``ErrorInfo.reason`` (e.g. "SLOT_UNAVAILABLE"), or "" when the status has no ErrorInfo."""
    domain: str
    metadata: dict[str, str]
    details: list[any_pb2.Any]
    retry_delay: float | None
    """Seconds from ``RetryInfo.retry_delay``: the server's word on when a retry may succeed."""
    field_violations: list[tuple[str, str]]
    """``(field, description)`` pairs from ``BadRequest``."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        details: Iterable[any_pb2.Any] = (),
    ) -> None:
        super().__init__(message)
        self.code = code or self.grpc_status_code or grpc.StatusCode.UNKNOWN
        self.message = message
        self.details = list(details)
        info = _first(self.details, error_details_pb2.ErrorInfo)
        self.reason = info.reason if info else ""
        self.domain = info.domain if info else ""
        self.metadata = dict(info.metadata) if info else {}
        retry = _first(self.details, error_details_pb2.RetryInfo)
        self.retry_delay = (
            retry.retry_delay.ToTimedelta().total_seconds()
            if retry and retry.HasField("retry_delay")
            else None
        )
        self.field_violations = [
            (violation.field, violation.description)
            for bad_request in _all(self.details, error_details_pb2.BadRequest)
            for violation in bad_request.field_violations
        ]

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        return f"{text} [{self.reason}]" if self.reason else text


class InvalidArgumentError(CalendarError):
    """The request is malformed; ``field_violations`` names the fields."""

    grpc_status_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(CalendarError):
    """The named resource does not exist in the caller's account."""

    grpc_status_code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(CalendarError):
    """The resource to create exists already."""

    grpc_status_code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(CalendarError):
    """The account, agent or connection is not in a state that allows the call."""

    grpc_status_code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDeniedError(CalendarError):
    """The agent's settings do not allow the call."""

    grpc_status_code = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(CalendarError):
    """The API key is missing, unknown or revoked."""

    grpc_status_code = grpc.StatusCode.UNAUTHENTICATED


class AbortedError(CalendarError):
    """The call lost a race (time taken, same request_id still running); see ``reason``."""

    grpc_status_code = grpc.StatusCode.ABORTED


class SlotUnavailableError(AbortedError):
    """The asked time is no longer free; ``alternatives`` are the nearest free times."""

    alternatives: list[resources_pb2.Slot]
    """Closest first, from the ``gleam.calendar.v1.SlotUnavailableDetails`` detail."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        details: Iterable[any_pb2.Any] = (),
    ) -> None:
        super().__init__(message, code=code, details=details)
        slot_details = _first(self.details, resources_pb2.SlotUnavailableDetails)
        self.alternatives = list(slot_details.alternatives) if slot_details else []


class UnavailableError(CalendarError):
    """The service or the calendar provider could not answer; safe to retry (AIP-194)."""

    grpc_status_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(CalendarError):
    """The call did not finish within its deadline."""

    grpc_status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class InternalError(CalendarError):
    """A bug on the server's side; the message carries no detail."""

    grpc_status_code = grpc.StatusCode.INTERNAL


_CLASS_BY_CODE: Final[dict[grpc.StatusCode, type[CalendarError]]] = {
    cls.grpc_status_code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        FailedPreconditionError,
        PermissionDeniedError,
        UnauthenticatedError,
        AbortedError,
        UnavailableError,
        DeadlineExceededError,
        InternalError,
    )
    if cls.grpc_status_code is not None
}


def from_rpc_error(error: grpc.RpcError) -> CalendarError:
    """Converts a failed call's ``grpc.RpcError`` into the matching ``CalendarError``."""
    if not isinstance(error, grpc.Call):
        # Raised by something other than a finished call (an interceptor, a test double):
        # there is no status to read.
        return CalendarError(str(error) or type(error).__name__)
    code = error.code()
    message = error.details() or ""
    details = _status_details(error)
    cls = _CLASS_BY_CODE.get(code, CalendarError)
    if cls is AbortedError:
        info = _first(details, error_details_pb2.ErrorInfo)
        if info and info.domain == ERROR_DOMAIN and info.reason == _SLOT_UNAVAILABLE:
            cls = SlotUnavailableError
    return cls(message, code=code, details=details)


def _status_details(call: grpc.Call) -> list[any_pb2.Any]:
    try:
        status = rpc_status.from_call(call)
    except ValueError:
        # The rich status disagrees with the call's own code or message (a proxy rewrote one of
        # them); its details would describe a different error, so none are trusted.
        return []
    # The stub leaves from_call's result untyped; this also covers "no rich status" (None).
    if not isinstance(status, status_pb2.Status):
        return []
    return list(status.details)


def _all(details: Iterable[any_pb2.Any], kind: type[_M]) -> list[_M]:
    found = []
    for detail in details:
        message = kind()
        # Unpack checks the type URL, so a detail of another kind is skipped, not an error.
        if detail.Unpack(message):
            found.append(message)
    return found


def _first(details: Iterable[any_pb2.Any], kind: type[_M]) -> _M | None:
    return next(iter(_all(details, kind)), None)
