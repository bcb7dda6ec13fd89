"""A typed, synchronous client for ``gleam.calendar.v1.CalendarService``.

What lives here: ``CalendarClient`` (one method per RPC), the ``connect`` factory that opens a
channel for it, and the retry policy its calls share. It is for internal services and scripts;
the voice runtime calls the generated ``aio`` stubs directly, so nothing here is async. Errors
are the typed exceptions of ``gleam.calendar.errors``, re-exported here.

Every call carries ``authorization: Bearer <api key>`` metadata and a deadline. Calls that fail
with UNAVAILABLE are retried (AIP-194) within that same deadline; mutating requests get a
``request_id`` first, so a retry can never act twice (AIP-155).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Final, Self, TypeVar

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gleam.calendar.errors import (
    ERROR_DOMAIN,
    AbortedError,
    AlreadyExistsError,
    CalendarError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    SlotUnavailableError,
    UnauthenticatedError,
    UnavailableError,
    from_rpc_error,
)
from gleam.calendar.v1 import calendar_service_pb2 as pb
from gleam.calendar.v1.calendar_service_pb2_grpc import CalendarServiceStub

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "ERROR_DOMAIN",
    "AbortedError",
    "AlreadyExistsError",
    "CalendarClient",
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
    "connect",
]

DEFAULT_TIMEOUT: Final = 5.0
"""Seconds each call may take, retries included."""
DEFAULT_RETRIES: Final = 2
"""Extra attempts after an UNAVAILABLE answer."""

# Short on purpose: a caller is usually waiting on the line, and the whole call, retries
# included, has to fit in one deadline of a few seconds.
_FIRST_BACKOFF: Final = 0.1
_MAX_BACKOFF: Final = 1.0
_PROVIDER_RATE_LIMITED: Final = "PROVIDER_RATE_LIMITED"
_REQUEST_ID: Final = "request_id"

_Request = TypeVar("_Request", bound=Message)
_Response = TypeVar("_Response", bound=Message)


class CalendarClient:
    """Calls CalendarService over ``channel`` with one API key.

    Each method takes the RPC's request message and returns its response message, or raises a
    ``CalendarError`` subclass. ``timeout`` (seconds) bounds each call including its retries and
    may be overridden per call; ``retries`` is how many extra attempts an UNAVAILABLE answer may
    get. A client made from an existing channel never closes it; one made by ``connect`` closes
    its own channel on ``close()`` or when its ``with`` block ends.

    A mutating request whose ``request_id`` is empty gets a UUID4 written into it before the
    first attempt. The id stays on the caller's message on purpose: re-sending the same message
    after an error (a deadline, say) is then a safe retry, not a second booking.
    """

    def __init__(
        self,
        channel: grpc.Channel,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is empty")
        _check_timeout(timeout)
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self._stub = CalendarServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._timeout = timeout
        self._retries = retries
        self._owned_channel: grpc.Channel | None = None

    def close(self) -> None:
        """Closes the channel if this client opened it (``connect``); otherwise does nothing."""
        if self._owned_channel is not None:
            self._owned_channel.close()
            self._owned_channel = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def connect(
        self, request: pb.ConnectRequest, *, timeout: float | None = None
    ) -> pb.ConnectResponse:
        """Connects a calendar; its credentials are checked live before they are stored."""
        return self._call(self._stub.Connect, request, timeout)

    def get_google_consent_url(
        self, request: pb.GetGoogleConsentUrlRequest, *, timeout: float | None = None
    ) -> pb.GetGoogleConsentUrlResponse:
        """Returns the Google consent URL and its single-use state."""
        return self._call(self._stub.GetGoogleConsentUrl, request, timeout)

    def list_connections(
        self, request: pb.ListConnectionsRequest, *, timeout: float | None = None
    ) -> pb.ListConnectionsResponse:
        """Lists the account's connections, one page."""
        return self._call(self._stub.ListConnections, request, timeout)

    def get_connection(
        self, request: pb.GetConnectionRequest, *, timeout: float | None = None
    ) -> pb.GetConnectionResponse:
        """Returns one connection."""
        return self._call(self._stub.GetConnection, request, timeout)

    def disconnect(
        self, request: pb.DisconnectRequest, *, timeout: float | None = None
    ) -> pb.DisconnectResponse:
        """Forgets a connection's credentials and marks it REVOKED."""
        return self._call(self._stub.Disconnect, request, timeout)

    def test_connection(
        self, request: pb.TestConnectionRequest, *, timeout: float | None = None
    ) -> pb.TestConnectionResponse:
        """Checks a connection's credentials live; a failed check is ``ok = false``."""
        return self._call(self._stub.TestConnection, request, timeout)

    def list_calendars(
        self, request: pb.ListCalendarsRequest, *, timeout: float | None = None
    ) -> pb.ListCalendarsResponse:
        """Lists the calendars reachable through a connection, one page."""
        return self._call(self._stub.ListCalendars, request, timeout)

    def list_event_types(
        self, request: pb.ListEventTypesRequest, *, timeout: float | None = None
    ) -> pb.ListEventTypesResponse:
        """Lists a connection's event types."""
        return self._call(self._stub.ListEventTypes, request, timeout)

    def create_event_type(
        self, request: pb.CreateEventTypeRequest, *, timeout: float | None = None
    ) -> pb.CreateEventTypeResponse:
        """Creates an event type on a built-in or Google connection."""
        return self._call(self._stub.CreateEventType, request, timeout)

    def get_agent_calendar_settings(
        self, request: pb.GetAgentCalendarSettingsRequest, *, timeout: float | None = None
    ) -> pb.GetAgentCalendarSettingsResponse:
        """Returns an agent's calendar settings (defaults when never saved)."""
        return self._call(self._stub.GetAgentCalendarSettings, request, timeout)

    def update_agent_calendar_settings(
        self, request: pb.UpdateAgentCalendarSettingsRequest, *, timeout: float | None = None
    ) -> pb.UpdateAgentCalendarSettingsResponse:
        """Updates the fields of an agent's settings named in ``update_mask``."""
        return self._call(self._stub.UpdateAgentCalendarSettings, request, timeout)

    def get_confirmation_templates(
        self, request: pb.GetConfirmationTemplatesRequest, *, timeout: float | None = None
    ) -> pb.GetConfirmationTemplatesResponse:
        """Returns the account's confirmation templates (defaults where none were saved)."""
        return self._call(self._stub.GetConfirmationTemplates, request, timeout)

    def update_confirmation_templates(
        self, request: pb.UpdateConfirmationTemplatesRequest, *, timeout: float | None = None
    ) -> pb.UpdateConfirmationTemplatesResponse:
        """Replaces the account's confirmation templates; unknown placeholders are refused."""
        return self._call(self._stub.UpdateConfirmationTemplates, request, timeout)

    def prepare_call(
        self, request: pb.PrepareCallRequest, *, timeout: float | None = None
    ) -> pb.PrepareCallResponse:
        """Warms an agent's availability when a call connects."""
        return self._call(self._stub.PrepareCall, request, timeout)

    def list_slots(
        self, request: pb.ListSlotsRequest, *, timeout: float | None = None
    ) -> pb.ListSlotsResponse:
        """Lists bookable times; an empty answer says why."""
        return self._call(self._stub.ListSlots, request, timeout)

    def book(self, request: pb.BookRequest, *, timeout: float | None = None) -> pb.BookResponse:
        """Books an appointment; a taken time raises ``SlotUnavailableError``."""
        return self._call(self._stub.Book, request, timeout)

    def reschedule(
        self, request: pb.RescheduleRequest, *, timeout: float | None = None
    ) -> pb.RescheduleResponse:
        """Moves an appointment; a taken time raises ``SlotUnavailableError``."""
        return self._call(self._stub.Reschedule, request, timeout)

    def cancel(
        self, request: pb.CancelRequest, *, timeout: float | None = None
    ) -> pb.CancelResponse:
        """Cancels an appointment and frees its time."""
        return self._call(self._stub.Cancel, request, timeout)

    def get_appointment(
        self, request: pb.GetAppointmentRequest, *, timeout: float | None = None
    ) -> pb.GetAppointmentResponse:
        """Returns one appointment."""
        return self._call(self._stub.GetAppointment, request, timeout)

    def list_appointments(
        self, request: pb.ListAppointmentsRequest, *, timeout: float | None = None
    ) -> pb.ListAppointmentsResponse:
        """Lists appointments, one page."""
        return self._call(self._stub.ListAppointments, request, timeout)

    def create_busy_block(
        self, request: pb.CreateBusyBlockRequest, *, timeout: float | None = None
    ) -> pb.CreateBusyBlockResponse:
        """Blocks time on a built-in calendar."""
        return self._call(self._stub.CreateBusyBlock, request, timeout)

    def list_busy_blocks(
        self, request: pb.ListBusyBlocksRequest, *, timeout: float | None = None
    ) -> pb.ListBusyBlocksResponse:
        """Lists a built-in calendar's busy blocks overlapping a range, one page."""
        return self._call(self._stub.ListBusyBlocks, request, timeout)

    def delete_busy_block(
        self, request: pb.DeleteBusyBlockRequest, *, timeout: float | None = None
    ) -> pb.DeleteBusyBlockResponse:
        """Removes a busy block; one already gone is not an error."""
        return self._call(self._stub.DeleteBusyBlock, request, timeout)

    def _call(
        self,
        rpc: grpc.UnaryUnaryMultiCallable[_Request, _Response],
        request: _Request,
        timeout: float | None,
    ) -> _Response:
        budget = self._timeout if timeout is None else _check_timeout(timeout)
        deadline = time.monotonic() + budget
        _ensure_request_id(request)
        attempt = 0
        while True:
            try:
                return rpc(request, timeout=deadline - time.monotonic(), metadata=self._metadata)
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
                delay = self._retry_delay(error, attempt, deadline)
                if delay is None:
                    raise error from rpc_error
            time.sleep(delay)
            attempt += 1

    def _retry_delay(self, error: CalendarError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before trying again, or None when the error is final."""
        if error.code is not grpc.StatusCode.UNAVAILABLE or attempt >= self._retries:
            return None
        if error.retry_delay is not None:
            # The server knows when it (or the provider behind it) will take calls again.
            delay = error.retry_delay
        elif error.domain == ERROR_DOMAIN and error.reason == _PROVIDER_RATE_LIMITED:
            # Without a retry time an early retry only spends more of the provider's quota.
            return None
        else:
            backoff = min(_FIRST_BACKOFF * 2**attempt, _MAX_BACKOFF)
            # Jitter keeps clients that failed together from retrying together.
            delay = backoff * random.uniform(0.5, 1.0)
        if time.monotonic() + delay >= deadline:
            # Waiting would use up the deadline with no time left for the attempt itself.
            return None
        return delay


def connect(
    target: str,
    api_key: str,
    *,
    secure: bool = False,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, str | int]] = (),
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> CalendarClient:
    """Opens a channel to ``target`` ("host:port") and returns a client that owns it.

    ``secure`` uses TLS with ``credentials`` (default: the system's root certificates). Use it
    for anything beyond localhost or a private network: the API key travels in every call.
    """
    if credentials is not None and not secure:
        raise ValueError("credentials were given for an insecure channel; pass secure=True")
    if secure:
        channel = grpc.secure_channel(
            target, credentials or grpc.ssl_channel_credentials(), options=options
        )
    else:
        channel = grpc.insecure_channel(target, options=options)
    try:
        client = CalendarClient(channel, api_key, timeout=timeout, retries=retries)
    except BaseException:
        channel.close()
        raise
    client._owned_channel = channel
    return client


def _check_timeout(timeout: float) -> float:
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    return timeout


def _ensure_request_id(request: Message) -> None:
    field = request.DESCRIPTOR.fields_by_name.get(_REQUEST_ID)
    if field is None or field.type != FieldDescriptor.TYPE_STRING:
        return
    if not getattr(request, _REQUEST_ID):
        setattr(request, _REQUEST_ID, str(uuid.uuid4()))
