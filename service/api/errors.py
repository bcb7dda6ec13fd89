"""Domain errors -> google.rpc.Status with ErrorInfo (AIP-193), BadRequest, RetryInfo."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from gleam.calendar.v1 import resources_pb2 as res
from service.api import convert
from service.errors import (
    ERROR_DOMAIN,
    CalendarError,
    InvalidArgument,
    Kind,
    ProviderRateLimited,
    RequestInProgress,
    SlotUnavailable,
)

_CODES = {
    Kind.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    Kind.NOT_FOUND: code_pb2.NOT_FOUND,
    Kind.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    Kind.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    Kind.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    Kind.ABORTED: code_pb2.ABORTED,
    Kind.UNAVAILABLE: code_pb2.UNAVAILABLE,
    Kind.INTERNAL: code_pb2.INTERNAL,
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: CalendarError) -> grpc.Status:
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
            )
        )
    ]
    if isinstance(error, InvalidArgument):
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=error.field, description=error.description
                        )
                    ]
                )
            )
        )
    if isinstance(error, ProviderRateLimited | RequestInProgress):
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(error.retry_after * 1000))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    if isinstance(error, SlotUnavailable):
        business = error.time_zone
        caller = error.caller_time_zone or business
        details.append(
            _pack(
                res.SlotUnavailableDetails(
                    requested_time=convert.ts(error.requested),
                    alternatives=[convert.slot(s, business, caller) for s in error.alternatives],
                )
            )
        )
    return rpc_status.to_status(
        status_pb2.Status(code=_CODES[error.kind], message=error.message, details=details)
    )


def internal_status() -> grpc.Status:
    return to_status(CalendarError("internal error; it has been logged", reason="INTERNAL"))
