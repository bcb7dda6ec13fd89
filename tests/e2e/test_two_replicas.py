"""Two server processes sharing one database: 50 concurrent Books for one slot, one booking."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest
from sqlalchemy import func, select

from gleam.calendar.v1 import calendar_service_pb2_grpc as api_grpc
from gleam.calendar.v1 import resources_pb2 as res
from service.config import Settings
from service.scheduling.app import CalendarApp
from service.store import tables as t
from tests.helpers import TZ, Tenant, book_or_refused, book_request, make_tenant


def _next_tuesday_9am() -> datetime:
    """The replicas run on the real clock (not the suite's fixed one), so the slot is a real
    future one: next Tuesday, 9:00 in the tenant's time zone."""
    zone = ZoneInfo(TZ)
    today = datetime.now(zone).date()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    return datetime.combine(tuesday, time(9), tzinfo=zone).astimezone(UTC)


def _start(config: Settings) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALENDAR_")}
    env.update(
        CALENDAR_DATABASE_URL=config.sqlalchemy_url,
        CALENDAR_DATA_DIR=str(config.data_dir),
        CALENDAR_ENCRYPTION_KEYS=config.encryption_keys,
        CALENDAR_HOST="127.0.0.1",
        CALENDAR_PORT="0",
        CALENDAR_HTTP_PORT="0",
        CALENDAR_LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, int(line.rsplit(":", 1)[1])


@pytest.fixture
async def replicas(config: Settings, tmp_path: Path) -> AsyncIterator[list[int]]:
    procs = [_start(config) for _ in range(2)]
    try:
        yield [port for _, port in procs]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.communicate(timeout=15)


async def test_fifty_books_across_two_replicas_make_one_appointment(
    replicas: list[int], app: CalendarApp
) -> None:
    tenant: Tenant = await make_tenant(app)
    start = _next_tuesday_9am()
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for port in replicas]
    stubs = [api_grpc.CalendarServiceStub(c) for c in channels]

    try:
        outcomes = await asyncio.gather(
            *(
                book_or_refused(
                    stubs[i % 2],
                    tenant,
                    book_request(tenant, start, caller=res.Caller(name=f"Caller {i}")),
                )
                for i in range(50)
            )
        )
    finally:
        for c in channels:
            await c.close()
    assert outcomes.count("booked") == 1
    assert outcomes.count("refused") == 49
    async with app.deps.db.read() as session:
        confirmed = await session.scalar(
            select(func.count())
            .select_from(t.Appointment)
            .where(t.Appointment.status == "CONFIRMED")
        )
        claims = await session.scalar(select(func.count()).select_from(t.TimeClaim))
    assert (confirmed, claims) == (1, 1)
