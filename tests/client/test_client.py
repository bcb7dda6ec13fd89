"""Tests for the synchronous CalendarClient, against grpc_testing's fake channel.

The client runs in a worker thread; the test plays the server on the main thread with
``take_unary_unary`` and ``terminate``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf import any_pb2, duration_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from gleam.calendar import client as client_module
from gleam.calendar.client import (
    ERROR_DOMAIN,
    AbortedError,
    CalendarClient,
    CalendarError,
    DeadlineExceededError,
    InternalError,
    InvalidArgumentError,
    SlotUnavailableError,
    UnavailableError,
    connect,
)
from gleam.calendar.errors import from_rpc_error
from gleam.calendar.v1 import calendar_service_pb2 as pb
from gleam.calendar.v1 import resources_pb2

SERVICE = pb.DESCRIPTOR.services_by_name["CalendarService"]
BOOK = SERVICE.methods_by_name["Book"]
LIST_SLOTS = SERVICE.methods_by_name["ListSlots"]
API_KEY = "test-key"
WAIT = 5.0  # seconds a test waits for the client's side before failing, not hanging


@dataclass
class _Invocation:
    method: str
    request: Any  # a copy: grpc_testing hands the server the caller's own object
    timeout: float | None


class _RecordingChannel(grpc.Channel):
    """Wraps grpc_testing's channel, which drops the timeout, to record every invocation."""

    def __init__(self, inner: grpc.Channel) -> None:
        self._inner = inner
        self._condition = threading.Condition()
        self.invocations: list[_Invocation] = []
        self.closed = False

    def unary_unary(  # type: ignore[override]
        self, method: str, *args: Any, **kwargs: Any
    ) -> Callable[..., Any]:
        inner: Callable[..., Any] = self._inner.unary_unary(method)

        def invoke(request: Message, timeout: float | None = None, metadata: Any = None) -> Any:
            copy = type(request)()
            copy.CopyFrom(request)
            with self._condition:
                self.invocations.append(_Invocation(method, copy, timeout))
                self._condition.notify_all()
            return inner(request, timeout=timeout, metadata=metadata)

        return invoke

    def wait_for(self, count: int) -> None:
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.invocations) >= count, WAIT):
                raise AssertionError(f"expected {count} calls, got {len(self.invocations)}")

    def close(self) -> None:
        self.closed = True

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def unsubscribe(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def unary_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@dataclass
class FakeServer:
    """The server side of one test: start client calls, then answer them in order."""

    fake: Any
    recorder: _RecordingChannel
    taken: int = 0

    def client(self, **kwargs: Any) -> CalendarClient:
        return CalendarClient(self.recorder, API_KEY, **kwargs)

    def start(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(call(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)

        # A daemon thread, so a client stuck on an unanswered call fails its test (by timeout)
        # instead of keeping the interpreter alive.
        threading.Thread(target=run, daemon=True).start()
        return future

    def take(self, method: Any) -> tuple[Any, Any, Any]:
        self.taken += 1
        self.recorder.wait_for(self.taken)
        # take_unary_unary blocks until a call of this method arrives: check it is the one
        # made, so a wrong method fails here rather than hanging.
        made = self.recorder.invocations[self.taken - 1].method
        assert made == f"/{SERVICE.full_name}/{method.name}"
        metadata, request, rpc = self.fake.take_unary_unary(method)
        return metadata, request, rpc

    def answer(self, method: Any, response: Message) -> None:
        _, _, rpc = self.take(method)
        rpc.terminate(response, (), grpc.StatusCode.OK, "")

    def fail(self, method: Any, code: grpc.StatusCode, message: str, *details: Message) -> None:
        _, _, rpc = self.take(method)
        rpc.terminate(None, _status_trailer(code, message, *details), code, message)


@pytest.fixture
def fake_server() -> FakeServer:
    fake = grpc_testing.channel(
        pb.DESCRIPTOR.services_by_name.values(), grpc_testing.strict_real_time()
    )
    return FakeServer(fake, _RecordingChannel(fake))


def _status_trailer(
    code: grpc.StatusCode, message: str, *details: Message
) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return (("grpc-status-details-bin", status.SerializeToString()),)


def _error_info(reason: str, **metadata: str) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata)


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromMilliseconds(int(seconds * 1000))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _book_request(request_id: str = "") -> pb.BookRequest:
    return pb.BookRequest(
        agent_id="agent-1",
        start_time=timestamp_pb2.Timestamp(seconds=1_800_000_000),
        caller=resources_pb2.Caller(),
        request_id=request_id,
    )


def _rpc_error(future: Future[Any]) -> CalendarError:
    error = future.exception(timeout=WAIT)
    assert isinstance(error, CalendarError), error
    return error


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


# --- every call ---------------------------------------------------------------------------


def test_call_sends_api_key_and_default_deadline(fake_server: FakeServer) -> None:
    client = fake_server.client(timeout=3.0)
    future = fake_server.start(client.list_slots, pb.ListSlotsRequest(agent_id="agent-1"))

    metadata, request, rpc = fake_server.take(LIST_SLOTS)
    rpc.terminate(pb.ListSlotsResponse(time_zone="Europe/Paris"), (), grpc.StatusCode.OK, "")

    assert future.result(timeout=WAIT) == pb.ListSlotsResponse(time_zone="Europe/Paris")
    assert ("authorization", f"Bearer {API_KEY}") in metadata
    assert request == pb.ListSlotsRequest(agent_id="agent-1")
    timeout = fake_server.recorder.invocations[0].timeout
    assert timeout is not None
    assert 2.5 < timeout <= 3.0


def test_per_call_timeout_overrides_the_default(fake_server: FakeServer) -> None:
    client = fake_server.client(timeout=30.0)
    future = fake_server.start(client.list_slots, pb.ListSlotsRequest(), timeout=0.75)
    fake_server.answer(LIST_SLOTS, pb.ListSlotsResponse())

    future.result(timeout=WAIT)
    timeout = fake_server.recorder.invocations[0].timeout
    assert timeout is not None
    assert 0.5 < timeout <= 0.75


@pytest.mark.parametrize("method", list(SERVICE.methods), ids=lambda m: m.name)
def test_every_rpc_has_a_typed_method(fake_server: FakeServer, method: Any) -> None:
    request_type = getattr(pb, method.input_type.name)
    response_type = getattr(pb, method.output_type.name)
    client = fake_server.client()
    future = fake_server.start(getattr(client, _snake(method.name)), request_type())
    fake_server.answer(method, response_type())

    assert type(future.result(timeout=WAIT)) is response_type
    assert fake_server.recorder.invocations[0].method == f"/{SERVICE.full_name}/{method.name}"
    sent = fake_server.recorder.invocations[0].request
    if "request_id" in method.input_type.fields_by_name:
        assert uuid.UUID(sent.request_id).version == 4
    else:
        assert sent == request_type()


# --- request_id and retries --------------------------------------------------------------


def test_request_id_is_filled_once_and_reused_after_unavailable(fake_server: FakeServer) -> None:
    client = fake_server.client(timeout=3.0)
    request = _book_request()
    future = fake_server.start(client.book, request)

    fake_server.fail(BOOK, grpc.StatusCode.UNAVAILABLE, "provider timed out")
    fake_server.answer(BOOK, pb.BookResponse(slot=resources_pb2.Slot(label="3 pm")))

    assert future.result(timeout=WAIT).slot.label == "3 pm"
    first, second = fake_server.recorder.invocations
    request_id = first.request.request_id
    assert uuid.UUID(request_id).version == 4
    assert second.request.request_id == request_id
    # The caller's message keeps the id, so re-sending it later is a safe retry too.
    assert request.request_id == request_id
    # Both attempts share one deadline.
    assert first.timeout is not None
    assert second.timeout is not None
    assert second.timeout < first.timeout - 0.04


def test_request_id_given_by_the_caller_is_sent_unchanged(fake_server: FakeServer) -> None:
    client = fake_server.client()
    future = fake_server.start(client.book, _book_request("caller-chosen-id"))
    _, request, rpc = fake_server.take(BOOK)
    rpc.terminate(pb.BookResponse(), (), grpc.StatusCode.OK, "")

    future.result(timeout=WAIT)
    assert request.request_id == "caller-chosen-id"


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (grpc.StatusCode.ABORTED, AbortedError),
        (grpc.StatusCode.INTERNAL, InternalError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, CalendarError),
    ],
)
def test_no_retry_on_codes_other_than_unavailable(
    fake_server: FakeServer, code: grpc.StatusCode, error_type: type[CalendarError]
) -> None:
    client = fake_server.client(retries=5)
    future = fake_server.start(client.book, _book_request())
    fake_server.fail(BOOK, code, "nope")

    error = _rpc_error(future)
    assert type(error) is error_type
    assert error.code is code
    assert error.message == "nope"
    assert len(fake_server.recorder.invocations) == 1


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_are_bounded(fake_server: FakeServer, retries: int) -> None:
    client = fake_server.client(retries=retries, timeout=5.0)
    future = fake_server.start(client.list_slots, pb.ListSlotsRequest())
    for _ in range(retries + 1):
        fake_server.fail(LIST_SLOTS, grpc.StatusCode.UNAVAILABLE, "down")

    error = _rpc_error(future)
    assert isinstance(error, UnavailableError)
    assert len(fake_server.recorder.invocations) == retries + 1
    assert isinstance(error.__cause__, grpc.RpcError)


def test_no_retry_when_the_backoff_would_pass_the_deadline(fake_server: FakeServer) -> None:
    client = fake_server.client(retries=2, timeout=0.01)
    future = fake_server.start(client.list_slots, pb.ListSlotsRequest())
    fake_server.fail(LIST_SLOTS, grpc.StatusCode.UNAVAILABLE, "down")

    assert isinstance(_rpc_error(future), UnavailableError)
    assert len(fake_server.recorder.invocations) == 1


def test_rate_limited_without_retry_info_is_not_retried(fake_server: FakeServer) -> None:
    client = fake_server.client(retries=2)
    future = fake_server.start(client.list_slots, pb.ListSlotsRequest())
    info = _error_info("PROVIDER_RATE_LIMITED", provider="google")
    fake_server.fail(LIST_SLOTS, grpc.StatusCode.UNAVAILABLE, "rate limited", info)

    error = _rpc_error(future)
    assert isinstance(error, UnavailableError)
    assert error.reason == "PROVIDER_RATE_LIMITED"
    assert error.retry_delay is None
    assert len(fake_server.recorder.invocations) == 1


def test_rate_limited_is_retried_after_a_retry_delay_that_fits(fake_server: FakeServer) -> None:
    client = fake_server.client(retries=2, timeout=2.0)
    future = fake_server.start(client.list_slots, pb.ListSlotsRequest())
    info = _error_info("PROVIDER_RATE_LIMITED", provider="google")
    fake_server.fail(
        LIST_SLOTS, grpc.StatusCode.UNAVAILABLE, "rate limited", info, _retry_info(0.2)
    )
    fake_server.answer(LIST_SLOTS, pb.ListSlotsResponse(time_zone="UTC"))

    assert future.result(timeout=WAIT).time_zone == "UTC"
    first, second = fake_server.recorder.invocations
    assert first.timeout is not None
    assert second.timeout is not None
    assert first.timeout - second.timeout >= 0.2


def test_retry_delay_longer_than_the_deadline_is_not_waited_for(fake_server: FakeServer) -> None:
    client = fake_server.client(retries=2, timeout=1.0)
    future = fake_server.start(client.list_slots, pb.ListSlotsRequest())
    info = _error_info("PROVIDER_RATE_LIMITED", provider="google", retry_after_seconds="30")
    fake_server.fail(LIST_SLOTS, grpc.StatusCode.UNAVAILABLE, "rate limited", info, _retry_info(30))

    error = _rpc_error(future)
    assert error.retry_delay == pytest.approx(30.0)
    assert error.metadata == {"provider": "google", "retry_after_seconds": "30"}
    assert len(fake_server.recorder.invocations) == 1


# --- errors --------------------------------------------------------------------------------


def test_slot_unavailable_carries_error_info_and_alternatives(fake_server: FakeServer) -> None:
    alternatives = [
        resources_pb2.Slot(label="2:30 pm", start_time=timestamp_pb2.Timestamp(seconds=1800)),
        resources_pb2.Slot(label="4 pm", start_time=timestamp_pb2.Timestamp(seconds=3600)),
    ]
    info = _error_info("SLOT_UNAVAILABLE", start_time="2027-01-15T15:00:00Z")
    slot_details = resources_pb2.SlotUnavailableDetails(alternatives=alternatives)
    client = fake_server.client()
    future = fake_server.start(client.book, _book_request())
    fake_server.fail(BOOK, grpc.StatusCode.ABORTED, "that time was just taken", info, slot_details)

    error = _rpc_error(future)
    assert isinstance(error, SlotUnavailableError)
    assert isinstance(error, AbortedError)
    assert error.code is grpc.StatusCode.ABORTED
    assert error.message == "that time was just taken"
    assert error.reason == "SLOT_UNAVAILABLE"
    assert error.domain == ERROR_DOMAIN == "calendar.gleam.dev"
    assert error.metadata == {"start_time": "2027-01-15T15:00:00Z"}
    assert error.alternatives == alternatives
    assert [d.TypeName() for d in error.details] == [
        "google.rpc.ErrorInfo",
        "gleam.calendar.v1.SlotUnavailableDetails",
    ]
    assert str(error) == "ABORTED: that time was just taken [SLOT_UNAVAILABLE]"
    assert len(fake_server.recorder.invocations) == 1


def test_other_aborted_reasons_are_plain_aborted_errors(fake_server: FakeServer) -> None:
    client = fake_server.client()
    future = fake_server.start(client.book, _book_request())
    info = _error_info("REQUEST_IN_PROGRESS", request_id="r-1")
    fake_server.fail(BOOK, grpc.StatusCode.ABORTED, "still running", info, _retry_info(0.5))

    error = _rpc_error(future)
    assert type(error) is AbortedError
    assert error.reason == "REQUEST_IN_PROGRESS"
    assert error.retry_delay == pytest.approx(0.5)


def test_bad_request_field_violations_are_exposed(fake_server: FakeServer) -> None:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="agent_id", description="required"),
            error_details_pb2.BadRequest.FieldViolation(
                field="start_time", description="must be in the future"
            ),
        ]
    )
    client = fake_server.client()
    future = fake_server.start(client.book, _book_request())
    info = _error_info("INVALID_ARGUMENT", field="agent_id")
    fake_server.fail(
        BOOK, grpc.StatusCode.INVALID_ARGUMENT, "agent_id: required", info, bad_request
    )

    error = _rpc_error(future)
    assert isinstance(error, InvalidArgumentError)
    assert error.field_violations == [
        ("agent_id", "required"),
        ("start_time", "must be in the future"),
    ]
    assert error.reason == "INVALID_ARGUMENT"


def test_unknown_detail_kinds_are_kept_but_not_read(fake_server: FakeServer) -> None:
    client = fake_server.client()
    future = fake_server.start(client.book, _book_request())
    other = error_details_pb2.DebugInfo(detail="stack")
    fake_server.fail(BOOK, grpc.StatusCode.INTERNAL, "boom", other)

    error = _rpc_error(future)
    assert isinstance(error, InternalError)
    assert [d.TypeName() for d in error.details] == ["google.rpc.DebugInfo"]
    assert (error.reason, error.domain, error.metadata) == ("", "", {})
    assert error.field_violations == []


def test_status_that_contradicts_the_call_is_ignored(fake_server: FakeServer) -> None:
    client = fake_server.client()
    future = fake_server.start(client.book, _book_request())
    _, _, rpc = fake_server.take(BOOK)
    # A rich status claiming ABORTED on a call that ended NOT_FOUND.
    trailer = _status_trailer(grpc.StatusCode.ABORTED, "gone", _error_info("SLOT_UNAVAILABLE"))
    rpc.terminate(None, trailer, grpc.StatusCode.NOT_FOUND, "gone")

    error = _rpc_error(future)
    assert error.code is grpc.StatusCode.NOT_FOUND
    assert error.reason == ""
    assert error.details == []


def test_rpc_error_that_is_not_a_call_becomes_unknown() -> None:
    error = from_rpc_error(grpc.RpcError("interceptor said no"))

    assert type(error) is CalendarError
    assert error.code is grpc.StatusCode.UNKNOWN
    assert error.message == "interceptor said no"


def test_errors_can_be_built_directly_for_fakes() -> None:
    detail = any_pb2.Any()
    detail.Pack(resources_pb2.SlotUnavailableDetails(alternatives=[resources_pb2.Slot(label="x")]))

    error = SlotUnavailableError("taken", details=[detail])

    assert error.code is grpc.StatusCode.ABORTED
    assert [slot.label for slot in error.alternatives] == ["x"]


# --- construction and channel ownership -----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"api_key": ""}, "api_key"),
        ({"timeout": 0.0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"retries": -1}, "retries"),
    ],
)
def test_constructor_rejects_bad_settings(
    fake_server: FakeServer, kwargs: dict[str, Any], complaint: str
) -> None:
    arguments: dict[str, Any] = {"api_key": API_KEY, **kwargs}
    with pytest.raises(ValueError, match=complaint):
        CalendarClient(fake_server.recorder, **arguments)


def test_per_call_timeout_must_be_positive(fake_server: FakeServer) -> None:
    with pytest.raises(ValueError, match="timeout"):
        fake_server.client().list_slots(pb.ListSlotsRequest(), timeout=0)
    assert fake_server.recorder.invocations == []


def test_client_does_not_close_a_channel_it_was_given(fake_server: FakeServer) -> None:
    with fake_server.client() as client:
        assert isinstance(client, CalendarClient)
    assert not fake_server.recorder.closed


def test_connect_closes_the_channel_it_opened() -> None:
    with connect("localhost:1", API_KEY, timeout=0.5) as client:
        pass

    # grpc refuses calls on a closed channel before sending anything.
    with pytest.raises(ValueError, match="closed channel"):
        client.list_connections(pb.ListConnectionsRequest())


def test_connect_refuses_credentials_on_an_insecure_channel() -> None:
    credentials = grpc.ssl_channel_credentials()
    with pytest.raises(ValueError, match="secure=True"):
        connect("localhost:1", API_KEY, credentials=credentials)


def test_public_names_are_exported() -> None:
    assert {"CalendarClient", "connect", "ERROR_DOMAIN", "SlotUnavailableError"} <= set(
        client_module.__all__
    )
    for name in client_module.__all__:
        assert hasattr(client_module, name), name
