"""The suite's Cal.com emulator over real HTTP on loopback, with a response delay and counters.

``python -m bench.calcom_server --port 0 --delay-ms 80`` serves ``tests.emulators.calcom`` with
uvicorn and prints ``calcom listening on HOST:PORT`` once bound. The emulator has no delay knob,
so ``DelayCounter`` wraps its ASGI app: every ``GET /v2/slots`` sleeps the current delay first
and is counted, in total and per ``start`` query value.

Control endpoints (bench only, never forwarded to the emulator):
- ``GET /_bench/stats``: ``{"slots_requests": N, "by_start": {start: N}, "delay_ms": D}``
- ``POST /_bench/delay?ms=D``: change the delay at run time (0 = answer at once).

The emulator's clock is the real one here (``now`` = start-up time), so it offers slots on real
future dates. Its OpenAPI checking of every request and response is off by default
(``--validate`` turns it on): the suite needs it, a latency benchmark only pays for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.emulators.calcom import CalcomEmulator

SLOTS_PATH = "/v2/slots"


class _NoValidator:
    """Stands in for SpecValidator: accepts every request and response."""

    def check_request(self, *args: Any, **kwargs: Any) -> None:
        return None

    def check_response(self, *args: Any, **kwargs: Any) -> None:
        return None


class BenchEmulator(CalcomEmulator):
    """The emulator with its request log bounded (a long run would otherwise keep every call)."""

    def __init__(self, *, validate: bool) -> None:
        super().__init__(now=datetime.now(UTC))
        if not validate:
            self.validator = _NoValidator()  # type: ignore[assignment]

    def _check_response(self, method: str, path: str, status: int, payload: Any) -> None:
        if isinstance(self.validator, _NoValidator):
            return
        super()._check_response(method, path, status, payload)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)
        if len(self.log) > 1000:
            del self.log[:-100]


class DelayCounter:
    """ASGI middleware: delays and counts ``GET /v2/slots``; serves the /_bench endpoints."""

    def __init__(self, app: ASGIApp, delay_ms: float) -> None:
        self.app = app
        self.delay_ms = delay_ms
        self.slots_requests = 0
        self.by_start: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode())
        if path.startswith("/_bench/"):
            await self._control(scope, path, query, send)
            return
        if scope["method"] == "GET" and path == SLOTS_PATH:
            self.slots_requests += 1
            self.by_start[(query.get("start") or [""])[0]] += 1
            if self.delay_ms > 0:
                await asyncio.sleep(self.delay_ms / 1000)
        await self.app(scope, receive, send)

    async def _control(
        self, scope: Scope, path: str, query: dict[str, list[str]], send: Send
    ) -> None:
        status = 200
        if path == "/_bench/delay" and scope["method"] == "POST":
            self.delay_ms = float((query.get("ms") or ["0"])[0])
            body: dict[str, Any] = {"delay_ms": self.delay_ms}
        elif path == "/_bench/stats":
            body = {
                "slots_requests": self.slots_requests,
                "by_start": dict(self.by_start),
                "delay_ms": self.delay_ms,
            }
        else:
            status, body = 404, {"error": "unknown bench endpoint"}
        raw = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


async def serve(host: str, port: int, delay_ms: float, validate: bool) -> None:
    app = DelayCounter(BenchEmulator(validate=validate), delay_ms)
    # Bound here, so the kernel's port choice can be printed before uvicorn starts serving.
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # accepted sockets inherit it. With proto 0, Nagle plus delayed ACKs add ~40 ms per response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn's own SIGTERM/SIGINT handling stops it gracefully.
    print(f"calcom listening on {host}:{sock.getsockname()[1]}", flush=True)
    await server.serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay of GET /v2/slots")
    parser.add_argument("--validate", action="store_true", help="check the OpenAPI file too")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.delay_ms, args.validate))


if __name__ == "__main__":
    main()
