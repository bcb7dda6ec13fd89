"""Server subprocesses: start one, wait for its "listening on HOST:PORT" line, stop it cleanly.

Both servers (the service and the echo baseline) announce their bound address on stdout, so
they are started on port 0 and the kernel's choice is read back: no window in which another
program could take a port picked in advance. stderr goes to a log file shown on failure.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LISTENING = re.compile(r"listening on (\S+):(\d+)")


class ServerError(RuntimeError):
    """A server process did not come up."""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    log_path: Path
    address: str = ""

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _pump(stream: queue.Queue[str | None], process: subprocess.Popen[str]) -> None:
    # Keeps reading to EOF so a chatty server can never block on a full stdout pipe.
    assert process.stdout is not None
    for line in process.stdout:
        stream.put(line)
    stream.put(None)


def start_server(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    ready_timeout: float,
) -> Server:
    """Start argv and return once it prints its listening address (or raise ServerError)."""
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    server = Server(name, process, log_path)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(lines, process), daemon=True).start()
    try:
        server.address = _wait_listening(server, lines, ready_timeout)
    except BaseException:
        # Ctrl-C or a failure while waiting: the caller never got a handle to stop it with.
        stop_server(server)
        raise
    return server


def _wait_listening(server: Server, lines: queue.Queue[str | None], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerError(f"{server.name} did not report its address within {timeout:.0f} s")
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            code = server.process.wait()
            raise ServerError(f"{server.name} exited with code {code}:\n{server.log_tail()}")
        match = LISTENING.search(line)
        if match:
            return f"{match.group(1)}:{match.group(2)}"


def stop_server(server: Server, grace: float = 10.0) -> None:
    """SIGTERM, wait up to grace seconds, then SIGKILL: the servers drain in-flight RPCs first."""
    process = server.process
    if process.poll() is None:
        # Already gone between poll() and the signal: nothing left to stop.
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The current environment without inherited CALENDAR_* settings, plus extra.

    A developer's own CALENDAR_DATABASE_URL or keys must not leak into the benchmark: the
    service under test always runs on the throw-away SQLite data dir set here.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALENDAR_")}
    env.update(extra)
    return env
