"""Authentication, plan gating and cross-account isolation, through the generated stubs."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gleam.calendar.v1 import calendar_service_pb2 as api
from service.model import Plan
from service.scheduling.app import CalendarApp
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Tenant, assert_error, book_request, make_tenant


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        (("authorization", "Bearer gck_not-a-real-key"),),
        (("authorization", "Basic dXNlcjpwYXNz"),),
        (("authorization", "Bearer "),),
    ],
    ids=["missing", "unknown", "wrong-scheme", "empty"],
)
async def test_rpcs_need_a_valid_api_key(server: Server, tenant: Tenant, metadata: tuple) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=metadata)
    assert_error(caught.value, grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")


async def test_health_and_reflection_need_no_key(server: Server) -> None:
    health = health_pb2_grpc.HealthStub(server.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(server.channel)
    answers = [
        a
        async for a in reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    ]
    names = {s.name for s in answers[0].list_services_response.service}
    assert "gleam.calendar.v1.CalendarService" in names


@pytest.mark.parametrize("plan", [Plan.FREE, Plan.STARTER])
async def test_lower_plans_get_plan_required(server: Server, app: CalendarApp, plan: Plan) -> None:
    low = await make_tenant(app, plan=plan)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListSlots(
            api.ListSlotsRequest(
                agent_id=low.agent_id, date={"year": 2026, "month": 11, "day": 24}
            ),
            metadata=low.auth,
        )
    info = assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "PLAN_REQUIRED")
    assert info.metadata["plan"] == plan.value
    assert "PROFESSIONAL" in info.metadata["required_plans"]


async def test_enterprise_plan_is_allowed(server: Server, app: CalendarApp) -> None:
    ent = await make_tenant(app, plan=Plan.ENTERPRISE)
    reply = await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=ent.auth)
    assert [c.connection_id for c in reply.connections] == [ent.connection_id]


async def test_other_accounts_ids_answer_not_found(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    booked = await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    intruder = await make_tenant(app, agent_id=tenant.agent_id)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.GetConnection(
            api.GetConnectionRequest(connection_id=tenant.connection_id), metadata=intruder.auth
        )
    assert_error(caught.value, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.GetAppointment(
            api.GetAppointmentRequest(appointment_id=booked.appointment.appointment_id),
            metadata=intruder.auth,
        )
    assert_error(caught.value, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Cancel(
            api.CancelRequest(
                appointment_id=booked.appointment.appointment_id, agent_id=intruder.agent_id
            ),
            metadata=intruder.auth,
        )
    assert_error(caught.value, grpc.StatusCode.NOT_FOUND, "NOT_FOUND")

    # The same agent id in another account is another agent: it sees none of the bookings.
    listed = await server.stub.ListAppointments(
        api.ListAppointmentsRequest(agent_id=tenant.agent_id), metadata=intruder.auth
    )
    assert list(listed.appointments) == []

    # Pointing one's agent at another account's connection is refused.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.UpdateAgentCalendarSettings(
            api.UpdateAgentCalendarSettingsRequest(
                settings={"agent_id": intruder.agent_id, "connection_id": tenant.connection_id},
                update_mask={"paths": ["connection_id"]},
            ),
            metadata=intruder.auth,
        )
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")

    # And the owner still sees the appointment untouched.
    mine = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=booked.appointment.appointment_id),
        metadata=tenant.auth,
    )
    assert mine.appointment.status == booked.appointment.status


async def test_cached_key_still_checks_every_call(server: Server, tenant: Tenant) -> None:
    ok = await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=tenant.auth)
    assert len(ok.connections) == 1
    bad = (("authorization", f"Bearer {tenant.api_key}x"),)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=bad)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
