"""Server plumbing: interceptor order as seen in the access log, and draining on stop."""

from __future__ import annotations

import asyncio
import json
import logging

import grpc
import pytest

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import calendar_service_pb2_grpc as api_grpc
from gleam.calendar.v1 import resources_pb2 as res
from service.api.server import create_server, set_serving
from service.scheduling.app import CalendarApp
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Tenant, book_request
from tests.scripted import script_provider


def _rpc_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "gleam.calendar.access"]


async def test_access_log_wraps_auth_and_error_mapping(
    server: Server, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gleam.calendar.access")
    with pytest.raises(grpc.aio.AioRpcError):
        await server.stub.ListConnections(api.ListConnectionsRequest())
    await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=tenant.auth)
    with pytest.raises(grpc.aio.AioRpcError):
        await server.stub.GetAppointment(
            api.GetAppointmentRequest(appointment_id="nope"), metadata=tenant.auth
        )
    lines = _rpc_lines(caplog)
    # Outermost: the log sees auth failures with their final code; inner errors carry the
    # account the auth interceptor resolved.
    assert [(x["method"], x["code"], x["account_id"]) for x in lines] == [
        ("ListConnections", "UNAUTHENTICATED", None),
        ("ListConnections", "OK", tenant.account_id),
        ("GetAppointment", "NOT_FOUND", tenant.account_id),
    ]
    assert all(isinstance(x["duration_ms"], float) for x in lines)


async def test_stop_lets_in_flight_rpcs_finish(app: CalendarApp, tenant: Tenant) -> None:
    script_provider(app, {"delay": 0.5})
    srv, port, health = await create_server(app, "127.0.0.1:0")
    await srv.start()
    await set_serving(health, True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = api_grpc.CalendarServiceStub(channel)
        call = asyncio.ensure_future(
            stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth, timeout=10)
        )
        await asyncio.sleep(0.2)  # Book is now waiting on the provider
        await health.enter_graceful_shutdown()
        await srv.stop(5)
        reply = await call
    assert reply.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
