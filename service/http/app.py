"""The Starlette application and the uvicorn server that runs it inside the gRPC process."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.http.base import RouteFactory
from service.http.oauth import GoogleCallback
from service.http.webhooks import Webhooks
from service.scheduling.app import CalendarApp

# Every feature that answers over HTTP: OAuth redirects and provider webhooks.
ROUTE_FACTORIES: tuple[type[RouteFactory], ...] = (GoogleCallback, Webhooks)


def create_http_app(app: CalendarApp) -> Starlette:
    async def healthz(_request: Request) -> Response:
        ok = await app.deps.db.ping()
        return JSONResponse(
            {"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503
        )

    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    for factory in ROUTE_FACTORIES:
        routes.extend(factory(app).routes())
    return Starlette(routes=routes)


class HttpServer:
    """uvicorn on an already-bound socket, so port 0 works and the port is known at once."""

    def __init__(self, app: CalendarApp, host: str, port: int) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            create_http_app(app), log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="http")
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raise a start-up failure
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sock.close()
