"""The service under test: seed the demo tenant, build the ListSlots request, check readiness.

ListSlots is asked the way an agent asks during a call: one local date (next Tuesday in the
business's zone, the day the demo seeds appointments on), a caller in another zone, and
max_results=3 (a morning, a midday and an afternoon option).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
from google.type import date_pb2
from grpc_health.v1 import health_pb2

from gleam.calendar.v1 import calendar_service_pb2

SERVICE_NAME = "gleam.calendar.v1.CalendarService"
LIST_SLOTS = f"/{SERVICE_NAME}/ListSlots"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
CALLER_TIME_ZONE = "America/Chicago"
MAX_RESULTS = 3


@dataclass(frozen=True)
class Demo:
    api_key: str
    agent_id: str
    time_zone: str
    connection_id: str = ""

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)


def seed_demo(env: Mapping[str, str], cwd: Path, timeout: float = 60.0) -> Demo:
    """Run ``python -m service seed-demo --json`` and read the tenant it created."""
    done = subprocess.run(
        [sys.executable, "-m", "service", "seed-demo", "--json"],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"seed-demo failed ({done.returncode}):\n{done.stderr[-2000:]}")
    # The JSON is the last stdout line; anything before it would be incidental output.
    values = json.loads(done.stdout.strip().splitlines()[-1])
    return Demo(
        values["api_key"],
        values["agent_id"],
        values["time_zone"],
        values.get("connection_id", ""),
    )


def next_tuesday(time_zone: str, now: datetime | None = None) -> date:
    """Next Tuesday after today in time_zone (a week ahead when today is Tuesday), as seeded."""
    today = (now or datetime.now(ZoneInfo(time_zone))).astimezone(ZoneInfo(time_zone)).date()
    return today + timedelta(days=(1 - today.weekday()) % 7 or 7)


def list_slots_request(demo: Demo, day: date) -> bytes:
    request = calendar_service_pb2.ListSlotsRequest(
        agent_id=demo.agent_id,
        date=date_pb2.Date(year=day.year, month=day.month, day=day.day),
        caller_time_zone=CALLER_TIME_ZONE,
        max_results=MAX_RESULTS,
    )
    return request.SerializeToString()


def wait_serving(address: str, timeout: float = 30.0) -> None:
    """Poll grpc.health.v1 until CalendarService reports SERVING."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        # A typed multicallable: the grpc_health stubs do not declare HealthStub's methods.
        check: grpc.UnaryUnaryMultiCallable[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ] = channel.unary_unary(
            HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        while True:
            try:
                reply = check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass  # not accepting yet; retried until the deadline
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{address} not SERVING within {timeout:.0f} s")
            time.sleep(0.2)


@dataclass(frozen=True)
class WarmUp:
    response_bytes: int
    slots: int


def warm_up(address: str, request: bytes, demo: Demo) -> WarmUp:
    """One real ListSlots call: proves the setup works and gives the response size to mirror."""
    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            LIST_SLOTS, request_serializer=None, response_deserializer=None
        )
        raw: bytes = call(request, metadata=demo.metadata, timeout=30)
    response = calendar_service_pb2.ListSlotsResponse.FromString(raw)
    return WarmUp(response_bytes=len(raw), slots=len(response.slots))
