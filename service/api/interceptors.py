"""Server interceptors, outermost first: access log, error mapping, authentication, deadline.

Each wraps the unary handler of CalendarService methods; health and reflection pass untouched.
Handlers read the principal and deadline from context variables set here.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc

from service.api.errors import internal_status, to_status
from service.deadline import Deadline
from service.errors import CalendarError, Internal
from service.model import Principal
from service.scheduling.accounts import Authenticator, require_calendar_plan

SERVICE_PREFIX = "/gleam.calendar.v1.CalendarService/"

access_log = logging.getLogger("gleam.calendar.access")
error_log = logging.getLogger("gleam.calendar.errors")

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")
_deadline: contextvars.ContextVar[Deadline] = contextvars.ContextVar("deadline")
# Filled by inner interceptors for the access log line, which is written last.
_log_fields: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_fields")

Behavior = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]


def current_principal() -> Principal:
    return _principal.get()


def current_deadline() -> Deadline:
    return _deadline.get()


# Generic only in the type stubs, so the alias is a string at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def _wrap(handler: Handler, wrap: Callable[[Behavior], Behavior]) -> Handler:
    # Every CalendarService method is unary-unary and async (grpc.aio).
    behavior = cast(Behavior, handler.unary_unary)
    return grpc.unary_unary_rpc_method_handler(
        wrap(behavior),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class _UnaryInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        # The wrapped handler of each method, built on its first call: the inner handler is the
        # same object every time, and building wrappers per call showed up on ListSlots' profile.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX) or handler.unary_unary is None:
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(handler, lambda behavior: self.wrap(method, behavior))
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class AccessLogInterceptor(_UnaryInterceptor):
    """One JSON line per RPC: method, code, duration, account. Never payloads (caller PII)."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        name = method.removeprefix(SERVICE_PREFIX)

        async def logged(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            fields: dict[str, Any] = {"account_id": None}
            token = _log_fields.set(fields)
            code = "OK"
            try:
                response = await behavior(request, context)
            except BaseException:
                code = _code_name(context, default="UNKNOWN")
                raise
            else:
                code = _code_name(context, default="OK")
                return response
            finally:
                _log_fields.reset(token)
                if access_log.isEnabledFor(logging.INFO):  # no JSON built for a muted log
                    access_log.info(
                        json.dumps(
                            {
                                "event": "rpc",
                                "method": name,
                                "code": code,
                                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                                "account_id": fields["account_id"],
                            }
                        )
                    )

        return logged


def _code_name(context: grpc.aio.ServicerContext[Any, Any], *, default: str) -> str:
    code = context.code()
    if code is None:
        return default
    if isinstance(code, grpc.StatusCode):
        return code.name
    return str(code)


class ErrorInterceptor(_UnaryInterceptor):
    """Turns domain errors into rich statuses; anything unexpected into a bare INTERNAL."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def mapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await behavior(request, context)
            except CalendarError as error:
                if isinstance(error, Internal):
                    error_log.error("internal error in %s: %s", method, error.message)
                await context.abort_with_status(to_status(error))
            except grpc.aio.AbortError:
                raise
            except Exception:
                error_log.exception("unexpected error in %s", method)
                await context.abort_with_status(internal_status())

        return mapped


class AuthInterceptor(_UnaryInterceptor):
    """Bearer API key -> principal; calendar integration needs a Professional+ plan."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__()
        self._auth = authenticator

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def authenticated(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            metadata = context.invocation_metadata() or ()
            header = next((str(v) for k, v in metadata if k == "authorization"), None)
            principal = await self._auth.authenticate(header)
            fields = _log_fields.get(None)
            if fields is not None:
                fields["account_id"] = principal.account_id
            token = _principal.set(principal)
            try:
                require_calendar_plan(principal)
                return await behavior(request, context)
            finally:
                _principal.reset(token)

        return authenticated


class DeadlineInterceptor(_UnaryInterceptor):
    """Makes the client's remaining time available to provider calls below."""

    def wrap(self, method: str, behavior: Behavior) -> Behavior:
        async def bounded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            token = _deadline.set(Deadline.after(context.time_remaining()))
            try:
                return await behavior(request, context)
            finally:
                _deadline.reset(token)

        return bounded
