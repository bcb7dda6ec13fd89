"""The Cal.com adapter through gRPC, against the stateful emulator in tests/emulators/calcom.py.

The server's HTTP client is pointed at the emulator (ASGITransport) and ``calcom_api_url`` at its
base URL, so the registered adapter runs unchanged. Every exchange is checked against the
official OpenAPI file by the emulator; ``wired`` also fails a test that left a violation behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from sqlalchemy import select

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from service.config import Settings
from service.errors import (
    FailedPrecondition,
    NotFound,
    ProviderRateLimited,
    ProviderUnavailable,
    SlotUnavailable,
)
from service.http.app import create_http_app
from service.model import AgentSettings, ProviderKind, Scope
from service.providers.base import ProviderAuthError
from service.providers.calcom import (
    METADATA_KEY,
    api_version,
    calcom_adapter,
    map_error,
    placeholder_email,
    retry_after,
)
from service.scheduling import registry
from service.scheduling.app import CalendarApp
from service.scheduling.connections import webhook_secret_context
from service.scheduling.maintenance import reconcile_pending, renew_push_subscriptions
from service.store import tables as t
from service.store.crypto import generate_key
from tests.conftest import Server
from tests.emulators.calcom import BASE, GOOD_KEY, CalcomEmulator, Fault, parse, version_for
from tests.helpers import (
    NOW,
    TUESDAY_9AM,
    Clock,
    Tenant,
    assert_error,
    eventually,
    office_hours,
    retry_delay,
    tuesday_starts,
)

TUESDAY = date(2026, 11, 24)
CONSULTATION, MEETING = 101, 102


@pytest.fixture
def config(migrated_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=migrated_url,
        data_dir=tmp_path,
        encryption_keys=generate_key(),
        settings_cache_seconds=0.0,
        auth_cache_seconds=30.0,
        calcom_api_url=BASE,
        # Short, so the "booking made, answer lost" test times out quickly.
        provider_timeout_seconds=1.0,
    )


@pytest.fixture
def emulator() -> CalcomEmulator:
    return CalcomEmulator(now=NOW)


@pytest.fixture
async def wired(app: CalendarApp, emulator: CalcomEmulator) -> AsyncIterator[CalendarApp]:
    assert registry.ADAPTERS[ProviderKind.CALCOM] is calcom_adapter
    await app.deps.http.aclose()
    app.deps.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
    yield app
    assert emulator.violations == []


async def connect(server: Server, tenant: Tenant, key: str = GOOD_KEY) -> res.Connection:
    answer = await server.stub.Connect(
        api.ConnectRequest(display_name="Cal.com", calcom=api.CalcomCredentials(api_key=key)),
        metadata=tenant.auth,
    )
    return answer.connection


async def use_calcom(
    server: Server, app: CalendarApp, tenant: Tenant, *, only: str = ""
) -> tuple[str, dict[str, str]]:
    """Connects Cal.com and points the agent at it; returns (connection id, {title: our id}).
    ``only`` restricts the agent to the event type with that title."""
    conn = await connect(server, tenant)
    types = await server.stub.ListEventTypes(
        api.ListEventTypesRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    ids = {e.title: e.event_type_id for e in types.event_types}
    await app.agents.save_settings(
        tenant.account_id,
        AgentSettings(
            agent_id=tenant.agent_id,
            enabled=True,
            connection_id=conn.connection_id,
            allowed_event_type_ids=(ids[only],) if only else (),
            scopes=frozenset(Scope),
            business_name="Acme Dental",
            availability=office_hours(),
        ),
    )
    return conn.connection_id, ids


async def book(
    server: Server, tenant: Tenant, event_type_id: str, start: datetime, **caller: str
) -> res.Appointment:
    who = {"name": "Pat Caller", "email": "pat@example.com", "phone": "+12125550100", **caller}
    answer = await server.stub.Book(
        api.BookRequest(
            agent_id=tenant.agent_id,
            event_type_id=event_type_id,
            start_time=ts(start),
            caller=res.Caller(**who),
            call_id="call-1",
        ),
        metadata=tenant.auth,
    )
    return answer.appointment


# Connect ------------------------------------------------------------------------------------


async def test_connect_checks_the_key_live_and_stores_it_encrypted(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    conn = await connect(server, tenant)
    assert conn.provider == res.PROVIDER_CALCOM
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    assert conn.external_account == "owner@acme-dental.test"
    assert len(emulator.requests("GET", "/v2/me")) == 1
    async with wired.deps.db.read() as session:
        row = await session.get(t.Connection, conn.connection_id)
    assert row is not None
    assert row.credentials is not None
    assert GOOD_KEY not in str(row.credentials)
    assert GOOD_KEY not in repr(row.provider_state)
    assert row.provider_state["username"] == "acme-dental"
    assert wired.deps.cipher.decrypt(row.credentials, context=row.id) == GOOD_KEY


async def test_connect_with_a_rejected_key_is_refused(
    server: Server, wired: CalendarApp, tenant: Tenant
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await connect(server, tenant, key="cal_live_wrong")
    info = assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CREDENTIALS_REJECTED")
    assert info.metadata["provider"] == "CALCOM"
    assert "401" in (caught.value.details() or "")
    listed = await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=tenant.auth)
    assert [c.provider for c in listed.connections] == [res.PROVIDER_BUILTIN]


# Event types and slots ----------------------------------------------------------------------


async def test_event_types_mirror_calcom_with_durations(
    server: Server, wired: CalendarApp, tenant: Tenant
) -> None:
    conn_id, _ = await use_calcom(server, wired, tenant)
    types = await server.stub.ListEventTypes(
        api.ListEventTypesRequest(connection_id=conn_id), metadata=tenant.auth
    )
    # The hidden Cal.com type is mirrored but not offered.
    assert {e.title: e.duration.seconds for e in types.event_types} == {
        "Consultation": 900,
        "Meeting": 1800,
    }
    async with wired.deps.db.read() as session:
        refs = set(
            await session.scalars(
                select(t.EventType.provider_ref).where(t.EventType.connection_id == conn_id)
            )
        )
    assert refs == {"101", "102", "103"}


async def test_agent_may_book_only_the_chosen_event_types(
    server: Server, wired: CalendarApp, tenant: Tenant
) -> None:
    _, ids = await use_calcom(server, wired, tenant, only="Consultation")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tuesday_starts(server, tenant, ids["Meeting"])
    assert_error(caught.value, grpc.StatusCode.PERMISSION_DENIED, "EVENT_TYPE_NOT_ALLOWED")
    assert await tuesday_starts(server, tenant, ids["Consultation"])


async def test_slots_are_calcom_slots_inside_the_agents_hours(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    offered = await tuesday_starts(server, tenant, ids["Consultation"])
    provider = emulator.provider_starts(CONSULTATION, TUESDAY)
    eight_am = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 in New York
    five_pm = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    assert eight_am in provider
    assert five_pm in provider
    # Cal.com offers 08:00-17:45 every 15 min; the agent's 9-17 keeps 09:00-16:45.
    assert offered[0] == TUESDAY_9AM
    assert offered[-1] == five_pm - timedelta(minutes=15)
    assert eight_am not in offered
    assert set(offered) <= set(provider)
    assert len(offered) == 32
    call = emulator.requests("GET", "/v2/slots")[-1]
    assert call.query["eventTypeId"] == "101"
    assert call.query["timeZone"] == "America/New_York"
    assert call.query["start"].endswith("Z")
    assert call.query["end"].endswith("Z")


async def test_a_booked_time_disappears_from_slots(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    emulator.book_as_someone_else(CONSULTATION, TUESDAY_9AM + timedelta(hours=1))
    offered = await tuesday_starts(server, tenant, ids["Consultation"])
    assert TUESDAY_9AM in offered
    assert TUESDAY_9AM + timedelta(hours=1) not in offered


# Book, reschedule, cancel -------------------------------------------------------------------


async def test_book_reschedule_cancel(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    appt = await book(server, tenant, ids["Consultation"], TUESDAY_9AM, time_zone="Europe/Paris")
    assert appt.status == res.APPOINTMENT_STATUS_CONFIRMED
    [booking] = emulator.live_bookings()
    assert appt.provider_reference == booking["uid"]
    assert parse(booking["start"]) == TUESDAY_9AM
    assert booking["metadata"] == {METADATA_KEY: appt.appointment_id}
    [attendee] = booking["attendees"]
    assert attendee["name"] == "Pat Caller"
    assert attendee["email"] == "pat@example.com"
    assert attendee["timeZone"] == "Europe/Paris"
    assert attendee["phoneNumber"] == "+12125550100"
    # The slot was held first, then the hold released once booked.
    [hold] = emulator.requests("POST", "/v2/slots/reservations")
    assert hold.body["eventTypeId"] == CONSULTATION
    assert parse(hold.body["slotStart"]) == TUESDAY_9AM
    assert hold.status == 201
    # Released after Book answered: the caller does not wait for that round trip.
    await eventually(lambda: emulator.reservations == {})
    # Connect's webhook subscription aside, the hold comes first, then the booking.
    order = [r.path for r in emulator.log if r.method != "GET" and r.path != "/v2/webhooks"]
    assert order[:2] == ["/v2/slots/reservations", "/v2/bookings"]

    later = TUESDAY_9AM + timedelta(hours=2)
    moved = await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appt.appointment_id, agent_id=tenant.agent_id, start_time=ts(later)
        ),
        metadata=tenant.auth,
    )
    new = moved.appointment.provider_reference
    assert new != booking["uid"]
    assert emulator.bookings[new]["rescheduledFromUid"] == booking["uid"]
    assert emulator.bookings[booking["uid"]]["status"] == "cancelled"
    assert emulator.bookings[booking["uid"]]["rescheduledToUid"] == new
    assert parse(emulator.bookings[new]["start"]) == later
    async with wired.deps.db.read() as session:
        row = await session.get(t.Appointment, appt.appointment_id)
    assert row is not None
    assert row.provider_reference == new

    cancelled = await server.stub.Cancel(
        api.CancelRequest(appointment_id=appt.appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    assert cancelled.appointment.status == res.APPOINTMENT_STATUS_CANCELLED
    assert emulator.bookings[new]["status"] == "cancelled"
    assert emulator.live_bookings() == []
    assert emulator.requests("POST", f"/v2/bookings/{new}/cancel")[0].status == 200


async def test_caller_without_email_is_booked_with_an_undeliverable_placeholder(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    appt = await book(server, tenant, ids["Meeting"], TUESDAY_9AM, email="", phone="")
    [booking] = emulator.live_bookings()
    [attendee] = booking["attendees"]
    assert attendee["email"] == placeholder_email(appt.appointment_id)
    assert attendee["email"].endswith(".invalid")
    assert "phoneNumber" not in attendee
    assert attendee["timeZone"] == "America/New_York"  # the business's zone


async def test_cancelling_a_booking_already_cancelled_at_calcom_succeeds(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    appt = await book(server, tenant, ids["Consultation"], TUESDAY_9AM)
    emulator.bookings[appt.provider_reference]["status"] = "cancelled"
    cancelled = await server.stub.Cancel(
        api.CancelRequest(appointment_id=appt.appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    assert cancelled.appointment.status == res.APPOINTMENT_STATUS_CANCELLED
    assert emulator.requests("POST", r"/v2/bookings/[^/]+/cancel")[0].status == 400


async def test_slot_held_by_someone_else_is_unavailable_with_alternatives(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    # Free when we look; held by another booker the moment we try to hold it.
    emulator.script(
        Fault(
            "POST",
            "/v2/slots/reservations",
            before=lambda: emulator.hold_as_someone_else(CONSULTATION, TUESDAY_9AM),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await book(server, tenant, ids["Consultation"], TUESDAY_9AM)
    info = assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
    alternatives = [parse(a) for a in info.metadata["alternatives"].split(",")]
    assert alternatives
    assert TUESDAY_9AM not in alternatives
    assert all(a.date() == TUESDAY for a in alternatives)
    assert emulator.requests("POST", "/v2/slots/reservations")[0].status == 422
    assert emulator.requests("POST", "/v2/bookings") == []
    assert emulator.live_bookings() == []


async def test_booking_refused_after_the_hold_releases_the_hold(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    # Someone books the time between our hold and our booking (Cal.com's booking call decides).
    emulator.script(
        Fault(
            "POST",
            "/v2/bookings",
            before=lambda: emulator.book_as_someone_else(CONSULTATION, TUESDAY_9AM),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await book(server, tenant, ids["Consultation"], TUESDAY_9AM)
    info = assert_error(caught.value, grpc.StatusCode.ABORTED, "SLOT_UNAVAILABLE")
    assert TUESDAY_9AM.isoformat() not in info.metadata["alternatives"]
    assert info.metadata["alternatives"]
    assert emulator.requests("POST", "/v2/bookings")[0].status == 400
    [release] = emulator.requests("DELETE", r"/v2/slots/reservations/[^/]+")
    assert release.status == 200
    assert emulator.reservations == {}
    assert [b["attendees"][0]["name"] for b in emulator.live_bookings()] == ["Somebody Else"]


# Credentials, limits, outages ---------------------------------------------------------------


async def test_expired_key_marks_the_connection_and_says_so(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    conn_id, ids = await use_calcom(server, wired, tenant)
    emulator.revoke()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tuesday_starts(server, tenant, ids["Consultation"])
    info = assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CALENDAR_NOT_CONNECTED")
    assert info.metadata["connection_status"] == "NEEDS_REAUTH"
    assert "verify API keys haven't expired" in (caught.value.details() or "")
    got = await server.stub.GetConnection(
        api.GetConnectionRequest(connection_id=conn_id), metadata=tenant.auth
    )
    assert got.connection.status == res.CONNECTION_STATUS_NEEDS_REAUTH
    checked = await server.stub.TestConnection(
        api.TestConnectionRequest(connection_id=conn_id), metadata=tenant.auth
    )
    assert not checked.ok
    assert not checked.can_create_events


async def test_test_connection_is_live(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    conn_id, _ = await use_calcom(server, wired, tenant)
    before = len(emulator.requests("GET", "/v2/me"))
    checked = await server.stub.TestConnection(
        api.TestConnectionRequest(connection_id=conn_id), metadata=tenant.auth
    )
    assert checked.ok
    assert checked.can_read_availability
    assert checked.can_create_events
    assert checked.can_modify_events
    assert len(emulator.requests("GET", "/v2/me")) == before + 1


async def test_rate_limit_on_slots_honours_the_reset_header(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    emulator.rate_limit("GET", "/v2/slots", reset_in=30)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tuesday_starts(server, tenant, ids["Consultation"])
    info = assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_RATE_LIMITED")
    # X-RateLimit-Reset-Default is a Unix time 30 s ahead (a second may pass meanwhile).
    assert 28 <= int(info.metadata["retry_after_seconds"]) <= 30
    assert 28 <= retry_delay(caught.value) <= 30


async def test_rate_limit_on_booking_honours_retry_after_and_books_nothing(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    emulator.rate_limit("POST", "/v2/bookings", reset_in=50, retry_after=17)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await book(server, tenant, ids["Consultation"], TUESDAY_9AM)
    info = assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_RATE_LIMITED")
    assert info.metadata["retry_after_seconds"] == "17"
    assert retry_delay(caught.value) == 17
    assert emulator.live_bookings() == []
    assert emulator.reservations == {}  # the hold was released
    async with wired.deps.db.read() as session:
        statuses = list(await session.scalars(select(t.Appointment.status)))
    assert statuses == ["FAILED"]


async def test_server_error_is_provider_unavailable(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    emulator.script(Fault("GET", "/v2/slots", status=503, code="ServiceUnavailableException"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tuesday_starts(server, tenant, ids["Consultation"])
    assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE")


async def test_timeout_after_the_booking_was_made_finds_it_by_metadata(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    emulator.script(Fault("POST", "/v2/bookings", hang_after=True))
    appt = await book(server, tenant, ids["Consultation"], TUESDAY_9AM)
    [booking] = emulator.live_bookings()
    assert len(emulator.requests("POST", "/v2/bookings")) == 1  # never created twice
    assert appt.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert appt.provider_reference == booking["uid"]
    lookup = emulator.requests("GET", "/v2/bookings")
    assert lookup
    assert lookup[0].query["sortCreated"] == "desc"


async def test_timeout_with_lookup_down_stays_pending_then_reconciles(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator, clock: Clock
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    emulator.script(Fault("POST", "/v2/bookings", hang_after=True))
    emulator.script(Fault("GET", "/v2/bookings", status=502))
    appt = await book(server, tenant, ids["Consultation"], TUESDAY_9AM)
    assert appt.status == res.APPOINTMENT_STATUS_PENDING
    [booking] = emulator.live_bookings()

    clock.advance(timedelta(minutes=2))
    counts = await reconcile_pending(wired.deps)
    assert counts["confirmed"] == 1
    got = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=appt.appointment_id), metadata=tenant.auth
    )
    assert got.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert got.appointment.provider_reference == booking["uid"]
    assert len(emulator.requests("POST", "/v2/bookings")) == 1


# cal-api-version ----------------------------------------------------------------------------


async def test_every_request_sends_its_endpoints_api_version(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    await tuesday_starts(server, tenant, ids["Consultation"])
    appt = await book(server, tenant, ids["Consultation"], TUESDAY_9AM)
    await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appt.appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(TUESDAY_9AM + timedelta(hours=1)),
        ),
        metadata=tenant.auth,
    )
    await server.stub.Cancel(
        api.CancelRequest(appointment_id=appt.appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    expected = {
        ("GET", "/v2/me"): None,
        ("GET", "/v2/event-types"): "2024-06-14",
        ("GET", "/v2/slots"): "2024-09-04",
        ("POST", "/v2/slots/reservations"): "2024-09-04",
        ("DELETE", "/v2/slots/reservations/{uid}"): "2024-09-04",
        ("POST", "/v2/bookings"): "2024-08-13",
        ("POST", "/v2/bookings/{uid}/reschedule"): "2024-08-13",
        ("POST", "/v2/bookings/{uid}/cancel"): "2024-08-13",
        ("POST", "/v2/webhooks"): None,  # the file names no version for webhooks
    }
    seen = {}
    for r in emulator.log:
        template, _ = emulator.validator.operation(r.method, r.path)
        key = (r.method, template.replace("{bookingUid}", "{uid}"))
        seen[key] = r.headers.get("cal-api-version")
        assert r.headers.get("cal-api-version") == expected[key], (r.method, r.path)
        assert r.status < 400, (r.method, r.path, r.status)
    assert seen == expected


async def test_emulator_rejects_a_missing_or_wrong_api_version(emulator: CalcomEmulator) -> None:
    auth = {"Authorization": f"Bearer {GOOD_KEY}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url=BASE) as c:
        params = {
            "eventTypeId": "101",
            "start": "2026-11-24",
            "end": "2026-11-25",
            "timeZone": "America/New_York",
        }
        missing = await c.get("/v2/slots", params=params, headers=auth)
        wrong = await c.get(
            "/v2/slots", params=params, headers={**auth, "cal-api-version": "2024-08-13"}
        )
        right = await c.get(
            "/v2/slots",
            params=params,
            headers={**auth, "cal-api-version": version_for("/v2/slots")},
        )
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "BadRequestException"
    assert wrong.status_code == 400
    assert right.status_code == 200
    assert right.json()["data"]["2026-11-24"][0]["start"] == "2026-11-24T08:00:00.000-05:00"


# The error mapping on its own ------------------------------------------------------------------


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _envelope(code: str, message: str) -> dict[str, object]:
    return {
        "status": "error",
        "timestamp": "",
        "path": "/v2/x",
        "error": {"code": code, "message": message},
    }


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, _envelope("UnauthorizedException", "Invalid API Key."), ProviderAuthError),
        (403, _envelope("ForbiddenException", "no"), ProviderAuthError),
        (500, {"statusCode": 500, "message": "Internal server error"}, ProviderUnavailable),
        (503, "not json", ProviderUnavailable),
        (404, _envelope("NotFoundException", "Booking not found"), NotFound),
        (409, _envelope("ConflictException", "x"), SlotUnavailable),
        (400, _envelope("BadRequestException", "no_available_users_found_error"), SlotUnavailable),
        (400, _envelope("BadRequestException", "eventTypeId must be a number"), FailedPrecondition),
        (418, {}, FailedPrecondition),
    ],
)
def test_map_error_never_leaves_a_status_unmapped(status: int, body: object, kind: type) -> None:
    mapped = map_error(_response(status, body), "create booking", slot_start=TUESDAY_9AM)
    assert isinstance(mapped, kind)


def test_retry_after_reads_every_header_form() -> None:
    now = 1_800_000_000.0
    assert retry_after(_response(429, {}, {"Retry-After": "12"}), now) == 12
    reset = {"X-RateLimit-Remaining-Short": "0", "X-RateLimit-Reset-Short": str(int(now) + 42)}
    assert retry_after(_response(429, {}, reset), now) == 42
    millis = {"X-RateLimit-Reset-Default": str(int(now * 1000) + 5000)}
    assert retry_after(_response(429, {}, millis), now) == 5
    assert retry_after(_response(429, {}), now) == 60  # Cal.com's window when nothing is said
    limited = map_error(_response(429, {}, {"Retry-After": "3"}), "list slots", now=now)
    assert isinstance(limited, ProviderRateLimited)
    assert limited.retry_after == 3


def test_api_version_per_endpoint_group() -> None:
    assert api_version("/v2/me") == ""
    assert api_version("/v2/bookings/abc/cancel") == "2024-08-13"
    assert api_version("/v2/slots/reservations/x") == "2024-09-04"
    assert api_version("/v2/event-types") == "2024-06-14"
    assert api_version("/v2/slotsx") == ""


# Pushes -------------------------------------------------------------------------------------


async def _webhook_secret(app: CalendarApp, connection_id: str) -> tuple[str, dict[str, object]]:
    async with app.deps.db.read() as session:
        row = await session.get(t.Connection, connection_id)
    assert row is not None
    sealed = row.provider_state["webhook_secret"]
    secret = app.deps.cipher.decrypt(sealed, context=webhook_secret_context(connection_id))
    return secret, dict(row.provider_state)


async def test_connect_subscribes_a_webhook_signed_with_the_connections_secret(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    conn = await connect(server, tenant)
    [hook] = emulator.webhooks.values()
    secret, state = await _webhook_secret(wired, conn.connection_id)
    assert hook["subscriberUrl"] == (
        f"{wired.deps.config.public_base_url}/webhooks/calcom/{conn.connection_id}"
    )
    assert hook["secret"] == secret
    assert hook["active"] is True
    assert hook["triggers"] == ["BOOKING_CREATED", "BOOKING_RESCHEDULED", "BOOKING_CANCELLED"]
    assert state["push"] == "on"
    assert state["calcom_webhook_id"] == str(hook["id"])
    # The secret is stored sealed only, never in the clear.
    assert secret not in str(state)


async def test_connect_succeeds_when_subscribing_fails_and_maintenance_retries(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    emulator.script(Fault("POST", "/v2/webhooks", status=503))
    conn = await connect(server, tenant)
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    assert emulator.webhooks == {}
    _, state = await _webhook_secret(wired, conn.connection_id)
    assert state["push"] == "off"

    counts = await renew_push_subscriptions(wired.deps)
    assert counts == {"subscribed": 1, "failed": 0}
    [hook] = emulator.webhooks.values()
    secret, state = await _webhook_secret(wired, conn.connection_id)
    assert hook["secret"] == secret
    assert state["push"] == "on"
    # Subscribed now: the next round leaves it alone.
    assert await renew_push_subscriptions(wired.deps) == {"subscribed": 0, "failed": 0}
    assert len(emulator.requests("POST", "/v2/webhooks")) == 2


async def test_disconnect_deletes_the_webhook(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    conn = await connect(server, tenant)
    assert len(emulator.webhooks) == 1
    await server.stub.Disconnect(
        api.DisconnectRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert emulator.webhooks == {}
    [deleted] = emulator.requests("DELETE", f"/v2/webhooks/{emulator._next_id}")
    assert deleted.status == 200


async def test_a_booking_made_at_calcom_is_pushed_and_drops_held_slots(
    server: Server, wired: CalendarApp, tenant: Tenant, emulator: CalcomEmulator
) -> None:
    _, ids = await use_calcom(server, wired, tenant)
    assert TUESDAY_9AM in await tuesday_starts(server, tenant, ids["Consultation"])
    emulator.book_as_someone_else(CONSULTATION, TUESDAY_9AM)
    # Held availability still offers it: nothing told us yet.
    assert TUESDAY_9AM in await tuesday_starts(server, tenant, ids["Consultation"])

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_http_app(wired)), base_url="http://svc"
    ) as push_client:
        emulator.push_client = push_client
        [answer] = await emulator.push("BOOKING_CREATED", {"uid": "someone-else"})
    assert answer.status_code == 200
    assert TUESDAY_9AM not in await tuesday_starts(server, tenant, ids["Consultation"])
