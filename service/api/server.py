"""create_server(app) -> (server, port): CalendarService + health + reflection, interceptors on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gleam.calendar.v1 import calendar_service_pb2, calendar_service_pb2_grpc
from service.api.interceptors import (
    AccessLogInterceptor,
    AuthInterceptor,
    DeadlineInterceptor,
    ErrorInterceptor,
)
from service.api.servicer import CalendarServicer
from service.http.app import HttpServer
from service.notify.worker import run_forever as run_notify_worker
from service.scheduling.app import CalendarApp
from service.scheduling.maintenance import run_forever

log = logging.getLogger("gleam.calendar.server")
SERVICE_NAME = calendar_service_pb2.DESCRIPTOR.services_by_name["CalendarService"].full_name


async def create_server(
    app: CalendarApp, address: str
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    server = grpc.aio.server(
        interceptors=[
            AccessLogInterceptor(),
            ErrorInterceptor(),
            AuthInterceptor(app.auth),
            DeadlineInterceptor(),
        ],
        options=[("grpc.so_reuseport", 0)],
    )
    calendar_service_pb2_grpc.add_CalendarServiceServicer_to_server(CalendarServicer(app), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    return server, port, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, status)


async def serve(app: CalendarApp) -> None:
    """Run until SIGTERM/SIGINT, then drain in-flight RPCs within the grace period."""
    config = app.deps.config
    server, port, health_servicer = await create_server(app, f"{config.host}:{config.port}")
    await server.start()
    http = HttpServer(app, config.host, config.http_port)
    await http.start()
    await app.invalidator.start()
    if await app.deps.db.ping():
        await set_serving(health_servicer, True)
    print(f"gleam-calendar listening on {config.host}:{port}", flush=True)
    print(f"gleam-calendar http on {config.host}:{http.port}", flush=True)
    upkeep = asyncio.create_task(run_forever(app.deps, app.invalidator), name="maintenance")
    notify = (
        asyncio.create_task(run_notify_worker(app.deps), name="notify-worker")
        if config.notify_in_server
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down; grace period %.1f s", config.grace_period_seconds)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(config.grace_period_seconds)
    await http.stop()
    upkeep.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await upkeep
    if notify is not None:
        # Cancelling mid-delivery loses nothing: claimed rows come due again at lease expiry.
        notify.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notify
    await app.close()
