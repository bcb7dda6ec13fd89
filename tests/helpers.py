"""Test helpers: a controllable clock, a seeded tenant, request builders, error assertions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from service.deadline import Deadline
from service.model import AgentSettings, Availability, EventDefaults, Plan, Scope, Window
from service.scheduling.accounts import create_account
from service.scheduling.app import CalendarApp

# Monday 2026-11-23 12:00 in New York: the suite's "now" unless a test moves the clock.
NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
TZ = "America/New_York"
# Tuesday 2026-11-24 in New York, 9:00 and later (UTC-5).
TUESDAY_9AM = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Tenant:
    account_id: str
    api_key: str
    connection_id: str
    calendar_id: str
    event_type_id: str
    agent_id: str

    @property
    def auth(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.api_key}"),)


def office_hours() -> Availability:
    nine_to_five = (Window(9 * 60, 17 * 60),)
    return Availability(time_zone=TZ, weekly_hours=(nine_to_five,) * 5 + ((), ()))


async def make_tenant(
    app: CalendarApp,
    *,
    plan: Plan = Plan.PROFESSIONAL,
    scopes: frozenset[Scope] = frozenset(Scope),
    agent_id: str = "agent-1",
    defaults: EventDefaults | None = None,
    availability: Availability | None = None,
) -> Tenant:
    account_id, key = await create_account(app.deps, f"acct-{uuid.uuid4().hex[:6]}", plan)
    conn = await app.connections.connect_builtin(account_id, "Front desk", "Front desk")
    types = await app.connections.list_event_types(
        account_id, conn.connection_id, Deadline.after(10)
    )
    await app.agents.save_settings(
        account_id,
        AgentSettings(
            agent_id=agent_id,
            enabled=True,
            connection_id=conn.connection_id,
            scopes=scopes,
            business_name="Acme Dental",
            availability=availability or office_hours(),
            event_defaults=defaults or EventDefaults(),
        ),
    )
    return Tenant(
        account_id,
        key,
        conn.connection_id,
        conn.default_calendar_id,
        types[0].event_type_id,
        agent_id,
    )


def book_request(tenant: Tenant, start: datetime, **overrides: object) -> api.BookRequest:
    fields: dict[str, object] = {
        "agent_id": tenant.agent_id,
        "event_type_id": tenant.event_type_id,
        "start_time": ts(start),
        "caller": res.Caller(name="Pat Caller", email="pat@example.com", phone="+12125550100"),
        "call_id": "call-1",
    }
    fields.update(overrides)
    return api.BookRequest(**fields)  # type: ignore[arg-type]


D = TypeVar("D", bound=Message)


def status_detail(err: grpc.aio.AioRpcError, kind: type[D]) -> D:
    """The first detail of type ``kind`` in the error's google.rpc.Status."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "the error carries no google.rpc.Status"
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            found = kind()
            detail.Unpack(found)
            return found
    raise AssertionError(f"no {kind.__name__} in the status details")


def error_info(err: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    return status_detail(err, error_details_pb2.ErrorInfo)


def retry_delay(err: grpc.aio.AioRpcError) -> float:
    """Seconds from the error's google.rpc.RetryInfo."""
    info = status_detail(err, error_details_pb2.RetryInfo)
    return info.retry_delay.ToTimedelta().total_seconds()


def assert_error(
    err: grpc.aio.AioRpcError, code: grpc.StatusCode, reason: str
) -> error_details_pb2.ErrorInfo:
    assert err.code() == code, (err.code(), err.details())
    info = error_info(err)
    assert info.reason == reason, (info.reason, err.details())
    assert info.domain == "calendar.gleam.dev"
    return info


async def tuesday_starts(server: Any, tenant: Tenant, event_type_id: str = "") -> list[datetime]:
    """ListSlots for Tuesday 2026-11-24 (business zone), as UTC start instants."""
    answer = await server.stub.ListSlots(
        api.ListSlotsRequest(
            agent_id=tenant.agent_id,
            event_type_id=event_type_id,
            date={"year": 2026, "month": 11, "day": 24},
        ),
        metadata=tenant.auth,
    )
    return [s.start_time.ToDatetime(tzinfo=UTC) for s in answer.slots]


async def eventually(check: Callable[[], bool], wait: float = 3.0) -> None:
    """Waits for work that runs after an RPC answered (e.g. a provider hold released)."""
    give_up = asyncio.get_running_loop().time() + wait
    while not check():
        assert asyncio.get_running_loop().time() < give_up, f"still not true after {wait} s"
        await asyncio.sleep(0.01)


async def set_daily_cap(app: CalendarApp, tenant: Tenant, cap: int) -> None:
    settings = await app.agents.get_settings(tenant.account_id, tenant.agent_id)
    await app.agents.save_settings(
        tenant.account_id,
        replace(settings, availability=replace(settings.availability, daily_cap=cap)),
    )


async def book_or_refused(stub: Any, tenant: Tenant, request: api.BookRequest) -> str:
    """ "booked", or "refused" when Book answered ABORTED / SLOT_UNAVAILABLE (anything else
    fails the test): the outcome of one contender in a race for time."""
    try:
        await stub.Book(request, metadata=tenant.auth, timeout=60)
    except grpc.aio.AioRpcError as err:
        assert_error(err, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
        return "refused"
    return "booked"
