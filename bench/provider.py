"""The provider-facing sections: cold ListSlots, single flight, Book overhead, memory.

All calls go through gRPC (``CalendarServiceStub`` on one grpc.aio channel) from this process;
latency is measured at the client with ``time.perf_counter``. Nothing is asserted: every
section returns figures, and the targets are compared in the report as "met"/"missed".

- Cold ListSlots: the emulator answers ``GET /v2/slots`` after a delay (80 ms). The agent's
  business zone is UTC, so one local date is exactly one UTC cache day; every request asks a
  weekday no earlier request touched, alternating the connection's two visible event types
  (each its own cache source), so each one misses the cache.
- Single flight: 50 concurrent ListSlots for one agent and one date nothing has asked yet;
  the emulator's count of ``GET /v2/slots`` for that day's start is the figure (expected 1).
- Book: the emulator answers at once; each Book takes a distinct free slot found beforehand.
- Memory: VmRSS of the service before and during many ListSlots over many agents and dates.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import httpx
from google.type import date_pb2, dayofweek_pb2, timeofday_pb2

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import calendar_service_pb2_grpc as rpc
from gleam.calendar.v1 import resources_pb2 as res
from tests.emulators.calcom import GOOD_KEY

Metadata = tuple[tuple[str, str], ...]
if TYPE_CHECKING:
    # The async stub type exists only in the generated .pyi; at run time it is the plain stub.
    Stub: TypeAlias = rpc.CalendarServiceAsyncStub
else:
    Stub = rpc.CalendarServiceStub
CALL_TIMEOUT_S = 10.0
WEEKDAYS = (
    dayofweek_pb2.MONDAY,
    dayofweek_pb2.TUESDAY,
    dayofweek_pb2.WEDNESDAY,
    dayofweek_pb2.THURSDAY,
    dayofweek_pb2.FRIDAY,
)
ALL_SCOPES = (
    res.SCOPE_READ_CALENDAR,
    res.SCOPE_CREATE_EVENTS,
    res.SCOPE_RESCHEDULE_EVENTS,
)


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (as bench.load computes it)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(latencies: list[float], errors: dict[str, int], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    count = len(ordered)

    def ms(value: float) -> float | None:
        return None if math.isnan(value) else round(value * 1000, 3)

    return {
        "count": count,
        "errors": sum(errors.values()),
        "error_codes": errors,
        "p50_ms": ms(percentile(ordered, 50)),
        "p90_ms": ms(percentile(ordered, 90)),
        "p99_ms": ms(percentile(ordered, 99)),
        "max_ms": ms(ordered[-1]) if ordered else None,
        "rps": round(count / wall, 1) if wall > 0 else None,
        "wall_s": round(wall, 3),
    }


async def run_calls(
    calls: Sequence[Callable[[], Awaitable[object]]], concurrency: int, time_limit: float
) -> tuple[list[float], dict[str, int], float, int]:
    """Runs the calls with ``concurrency`` workers; (latencies s, errors, wall s, issued)."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    began = time.perf_counter()
    deadline = began + time_limit
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(calls) and time.perf_counter() < deadline:
            call = calls[position]
            position += 1
            start = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError as error:
                # Code and the start of the message: enough to tell shedding from a bug.
                key = f"{error.code().name}: {(error.details() or '')[:80]}"
                errors[key] = errors.get(key, 0) + 1
                continue
            latencies.append(time.perf_counter() - start)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return latencies, errors, time.perf_counter() - began, position


def pb_date(day: date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def weekdays_from(first: date, count: int, step: int = 1) -> list[date]:
    """``count`` weekdays, starting at ``first``, every ``step``-th calendar day considered."""
    out: list[date] = []
    day = first
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=step)
    return out


def office_hours(time_zone: str) -> res.Availability:
    window = res.TimeWindow(
        start_time=timeofday_pb2.TimeOfDay(hours=9), end_time=timeofday_pb2.TimeOfDay(hours=17)
    )
    return res.Availability(
        time_zone=time_zone,
        weekly_hours=[res.DayHours(day=d, windows=[window]) for d in WEEKDAYS],
        max_advance_days=0,
    )


# The emulator --------------------------------------------------------------------------------


class EmulatorControl:
    """The bench-only endpoints of bench.calcom_server."""

    def __init__(self, address: str) -> None:
        self.base = f"http://{address}"

    def _call(self, method: str, path: str) -> dict[str, Any]:
        answer = httpx.request(method, self.base + path, timeout=10)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result

    def set_delay(self, ms: float) -> None:
        self._call("POST", f"/_bench/delay?ms={ms:g}")

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_bench/stats")


# Cal.com set-up ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalcomAgent:
    """An agent to book through; also the built-in demo agent, whose "" event type is its
    default one."""

    agent_id: str
    connection_id: str
    event_type_ids: tuple[str, ...]  # our ids of the connection's visible event types


async def setup_calcom(
    stub: Stub,
    metadata: Metadata,
    agent_ids: Sequence[str],
    template_agent_id: str,
) -> list[CalcomAgent]:
    """Connect(calcom) with the emulator's key, ListEventTypes, point each agent at it."""
    answer = await stub.Connect(
        api.ConnectRequest(
            request_id=str(uuid.uuid4()),
            display_name="Cal.com (bench)",
            calcom=api.CalcomCredentials(api_key=GOOD_KEY),
        ),
        metadata=metadata,
        timeout=30,
    )
    connection_id = answer.connection.connection_id
    types = await stub.ListEventTypes(
        api.ListEventTypesRequest(connection_id=connection_id), metadata=metadata, timeout=30
    )
    # The emulator's Consultation (15 min) first, then Meeting (30 min); hidden ones excluded.
    visible = sorted(types.event_types, key=lambda e: e.title)
    ids = tuple(e.event_type_id for e in visible if e.title in ("Consultation", "Meeting"))
    if not ids:
        raise RuntimeError(f"ListEventTypes returned no usable type: {types}")
    # The demo agent's settings as the template (event defaults, confirmations), re-pointed.
    template = (
        await stub.GetAgentCalendarSettings(
            api.GetAgentCalendarSettingsRequest(agent_id=template_agent_id),
            metadata=metadata,
            timeout=30,
        )
    ).settings
    agents = []
    for agent_id in agent_ids:
        settings = res.AgentCalendarSettings()
        settings.CopyFrom(template)
        settings.agent_id = agent_id
        settings.enabled = True
        settings.connection_id = connection_id
        settings.calendar_id = ""
        del settings.blocking_calendar_ids[:]
        settings.scopes[:] = ALL_SCOPES
        settings.availability.CopyFrom(office_hours("UTC"))
        settings.allowed_event_type_ids[:] = ids
        await stub.UpdateAgentCalendarSettings(
            api.UpdateAgentCalendarSettingsRequest(settings=settings, request_id=str(uuid.uuid4())),
            metadata=metadata,
            timeout=30,
        )
        agents.append(CalcomAgent(agent_id, connection_id, ids))
    return agents


def list_slots(
    agent_id: str, day: date, event_type_id: str = "", max_results: int = 3
) -> api.ListSlotsRequest:
    return api.ListSlotsRequest(
        agent_id=agent_id,
        event_type_id=event_type_id,
        date=pb_date(day),
        caller_time_zone="America/Chicago",
        max_results=max_results,
    )


# Sections ------------------------------------------------------------------------------------


async def cold_list_slots(
    stub: Stub,
    metadata: Metadata,
    agents: Sequence[CalcomAgent],
    first_day: date,
    *,
    requests: int,
    concurrency: int,
    time_limit: float,
) -> tuple[dict[str, Any], date]:
    """Each ListSlots asks an (event type, UTC day) no earlier call asked: a cache miss each.

    Returns the summary and the first day after the ones used.
    """
    types = agents[0].event_type_ids
    days = weekdays_from(first_day, math.ceil(requests / len(types)))
    from_cache = 0

    def make(i: int) -> Callable[[], Awaitable[object]]:
        agent = agents[i % len(agents)]
        request = list_slots(agent.agent_id, days[i // len(types)], types[i % len(types)])

        async def call() -> object:
            nonlocal from_cache
            answer = await stub.ListSlots(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
            from_cache += answer.from_cache
            return answer

        return call

    latencies, errors, wall, issued = await run_calls(
        [make(i) for i in range(requests)], concurrency, time_limit
    )
    result = summarize(latencies, errors, wall)
    result.update({"requested": requests, "timed_out": issued < requests, "from_cache": from_cache})
    return result, days[-1] + timedelta(days=1)


async def single_flight(
    stub: Stub,
    metadata: Metadata,
    agent: CalcomAgent,
    day: date,
    control: EmulatorControl,
    *,
    callers: int,
) -> dict[str, Any]:
    """``callers`` concurrent ListSlots for one agent and one not-yet-cached date."""
    start_key = datetime(day.year, day.month, day.day, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M")
    before = control.stats()
    request = list_slots(agent.agent_id, day, agent.event_type_ids[0])

    async def one() -> api.ListSlotsResponse:
        answer: api.ListSlotsResponse = await stub.ListSlots(
            request, metadata=metadata, timeout=CALL_TIMEOUT_S
        )
        return answer

    began = time.perf_counter()
    answers = await asyncio.gather(*(one() for _ in range(callers)), return_exceptions=True)
    wall = time.perf_counter() - began
    after = control.stats()

    def for_day(stats: dict[str, Any]) -> int:
        return sum(n for s, n in stats["by_start"].items() if s.startswith(start_key))

    ok = [a for a in answers if isinstance(a, api.ListSlotsResponse)]
    return {
        "callers": callers,
        "date": day.isoformat(),
        "ok": len(ok),
        "errors": callers - len(ok),
        "slots_in_first_answer": len(ok[0].slots) if ok else None,
        "provider_calls_for_day": for_day(after) - for_day(before),
        "provider_calls_total": after["slots_requests"] - before["slots_requests"],
        "wall_ms": round(wall * 1000, 3),
    }


async def free_starts(
    stub: Stub,
    metadata: Metadata,
    agent: CalcomAgent,
    first_day: date,
    wanted: int,
) -> tuple[list[tuple[str, Any]], date]:
    """``wanted`` distinct free (event type, start Timestamp) pairs, read with ListSlots."""
    found: list[tuple[str, Any]] = []
    day = first_day
    event_type_id = agent.event_type_ids[0]
    for _ in range(3 * wanted + 30):
        if len(found) >= wanted:
            break
        if day.weekday() < 5:
            answer = await stub.ListSlots(
                list_slots(agent.agent_id, day, event_type_id, max_results=0),
                metadata=metadata,
                timeout=30,
            )
            found += [(event_type_id, slot.start_time) for slot in answer.slots]
        day += timedelta(days=1)
    return found[:wanted], day


async def book_overhead(
    stub: Stub,
    metadata: Metadata,
    agent: CalcomAgent,
    starts: Sequence[tuple[str, Any]],
    *,
    concurrency: int,
    time_limit: float,
) -> dict[str, Any]:
    def make(i: int, event_type_id: str, start: Any) -> Callable[[], Awaitable[object]]:
        request = api.BookRequest(
            agent_id=agent.agent_id,
            event_type_id=event_type_id,
            start_time=start,
            caller=res.Caller(
                name=f"Bench Caller {i}",
                email=f"caller{i}@example.com",
                phone="+12125550100",
                time_zone="America/Chicago",
            ),
            request_id=str(uuid.uuid4()),
            call_id=f"bench-call-{i}",
        )

        async def call() -> object:
            return await stub.Book(request, metadata=metadata, timeout=CALL_TIMEOUT_S)

        return call

    calls = [make(i, et, start) for i, (et, start) in enumerate(starts)]
    latencies, errors, wall, issued = await run_calls(calls, concurrency, time_limit)
    result = summarize(latencies, errors, wall)
    result.update(
        {"requested": len(calls), "concurrency": concurrency, "timed_out": issued < len(calls)}
    )
    return result


def vm_rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB (None when it cannot be read)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


async def create_agents(
    stub: Stub,
    metadata: Metadata,
    template_agent_id: str,
    count: int,
    *,
    prefix: str = "bench-mem-",
    concurrency: int = 8,
) -> list[str]:
    """Copies the template agent's settings to ``count`` new agents (no booking window)."""
    template = (
        await stub.GetAgentCalendarSettings(
            api.GetAgentCalendarSettingsRequest(agent_id=template_agent_id),
            metadata=metadata,
            timeout=30,
        )
    ).settings
    template.availability.max_advance_days = 0
    ids = [f"{prefix}{i:05d}" for i in range(count)]

    def make(agent_id: str) -> Callable[[], Awaitable[object]]:
        settings = res.AgentCalendarSettings()
        settings.CopyFrom(template)
        settings.agent_id = agent_id
        request = api.UpdateAgentCalendarSettingsRequest(
            settings=settings, request_id=str(uuid.uuid4())
        )

        async def call() -> object:
            return await stub.UpdateAgentCalendarSettings(request, metadata=metadata, timeout=30)

        return call

    _, errors, _, _ = await run_calls([make(a) for a in ids], concurrency, 600)
    if errors:
        raise RuntimeError(f"creating {count} agents failed: {errors}")
    return ids


async def memory_run(
    stub: Stub,
    metadata: Metadata,
    pid: int,
    agent_ids: Sequence[str],
    first_day: date,
    *,
    requests: int,
    span_days: int,
    checkpoints: int,
    concurrency: int,
    time_limit: float,
) -> dict[str, Any]:
    """``requests`` ListSlots; request n asks agent n mod agents for a date spread over
    ``span_days`` days; VmRSS is read before and after each of ``checkpoints`` equal parts."""
    samples = [{"requests_done": 0, "rss_kib": vm_rss_kib(pid)}]
    deadline = time.perf_counter() + time_limit
    done = 0
    from_cache = 0
    all_errors: dict[str, int] = {}
    part = math.ceil(requests / checkpoints)
    began = time.perf_counter()
    latencies: list[float] = []

    def make(n: int) -> Callable[[], Awaitable[object]]:
        day = first_day + timedelta(days=(n * 7919) % span_days)
        request = list_slots(agent_ids[n % len(agent_ids)], day)

        async def call() -> object:
            nonlocal from_cache
            answer = await stub.ListSlots(request, metadata=metadata, timeout=CALL_TIMEOUT_S)
            from_cache += answer.from_cache
            return answer

        return call

    while done < requests and time.perf_counter() < deadline:
        count = min(part, requests - done)
        calls = [make(n) for n in range(done, done + count)]
        lat, errors, _, issued = await run_calls(calls, concurrency, deadline - time.perf_counter())
        latencies += lat
        for code, n in errors.items():
            all_errors[code] = all_errors.get(code, 0) + n
        done += issued
        samples.append({"requests_done": done, "rss_kib": vm_rss_kib(pid)})
    wall = time.perf_counter() - began
    result = summarize(latencies, all_errors, wall)
    result.update(
        {
            "requested": requests,
            "requests_done": done,
            "timed_out": done < requests,
            "agents": len(agent_ids),
            "span_days": span_days,
            "from_cache": from_cache,
            "rss_samples": samples,
        }
    )
    return result
