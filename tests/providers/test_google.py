"""The Google Calendar adapter through gRPC, against the Calendar API and token emulators.

Every base URL points at emulator hosts; any other host fails the request, so nothing here can
reach Google. The emulator checks every request and response body against the discovery
document and the fixture fails the test on any drift.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import field_mask_pb2

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.api.convert import ts
from service.config import Settings
from service.deadline import Deadline
from service.http.app import create_http_app
from service.model import Plan
from service.providers.google import event_id
from service.providers.google_tokens import SERVICE_ACCOUNT_SCOPES
from service.scheduling.app import CalendarApp
from service.scheduling.connections import webhook_secret_context
from service.scheduling.google_oauth import CALENDAR_LIST, FREEBUSY
from service.scheduling.maintenance import reconcile_pending, renew_push_subscriptions
from service.scheduling.registry import provider_for
from service.store import tables as t
from tests.conftest import Server
from tests.emulators.google_calendar import (
    DiscoveryValidator,
    GoogleCalendarEmulator,
    google_client,
)
from tests.emulators.google_token import GoogleTokenEmulator, ServiceAccount
from tests.emulators.openapi import SpecViolation
from tests.helpers import TUESDAY_9AM, Clock, Tenant, assert_error, make_tenant

TOKEN_URL = "http://oauth.google.test/token"
API_URL = "http://calendar.google.test/calendar/v3"
AUTH_URL = "http://accounts.google.test/o/oauth2/v2/auth"
USER = "owner@example.com"
TEAM = "team@group.calendar.google.com"
TUESDAY = {"year": 2026, "month": 11, "day": 24}


@pytest.fixture
def config(config: Settings) -> Settings:
    return config.model_copy(
        update={
            "google_client_id": GoogleTokenEmulator.client_id,
            "google_client_secret": GoogleTokenEmulator.client_secret,
            "google_token_url": TOKEN_URL,
            "google_api_url": API_URL,
            "google_auth_url": AUTH_URL,
            "public_base_url": "https://calendar.example.com",
        }
    )


@dataclass
class Google:
    tokens: GoogleTokenEmulator
    calendar: GoogleCalendarEmulator


@pytest.fixture
async def google(app: CalendarApp) -> AsyncIterator[Google]:
    tokens = GoogleTokenEmulator()
    calendar = GoogleCalendarEmulator(tokens, USER)
    await app.deps.http.aclose()
    app.deps.http = google_client(TOKEN_URL, API_URL, tokens, calendar)
    yield Google(tokens, calendar)
    calendar.assert_clean()


async def _consent(server: Server, tenant: Tenant) -> dict[str, str]:
    reply = await server.stub.GetGoogleConsentUrl(
        api.GetGoogleConsentUrlRequest(), metadata=tenant.auth
    )
    assert reply.consent_url.startswith(AUTH_URL + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(reply.consent_url).query).items()}


async def _connect_code(
    server: Server, tenant: Tenant, code: str, state: str
) -> api.ConnectResponse:
    return await server.stub.Connect(
        api.ConnectRequest(
            google_authorization_code=api.GoogleAuthorizationCode(code=code, state=state)
        ),
        metadata=tenant.auth,
    )


async def _connect(server: Server, tenant: Tenant, google: Google) -> res.Connection:
    params = await _consent(server, tenant)
    reply = await _connect_code(server, tenant, google.tokens.issue_code(params), params["state"])
    return reply.connection


async def _use_google(
    server: Server, tenant: Tenant, connection_id: str, *, invites: bool = True
) -> str:
    """Points the agent at the Google connection (primary calendar, TEAM blocking) and
    creates a 30-minute event type on it; returns the event type id."""
    created = await server.stub.CreateEventType(
        api.CreateEventTypeRequest(
            connection_id=connection_id,
            event_type=res.EventType(title="Cleaning", duration=timedelta(minutes=30)),
        ),
        metadata=tenant.auth,
    )
    settings = res.AgentCalendarSettings(
        agent_id=tenant.agent_id,
        connection_id=connection_id,
        blocking_calendar_ids=[TEAM],
        confirmations=res.ConfirmationChannels(calendar_invite=invites),
    )
    await server.stub.UpdateAgentCalendarSettings(
        api.UpdateAgentCalendarSettingsRequest(
            settings=settings,
            update_mask=field_mask_pb2.FieldMask(
                paths=["connection_id", "calendar_id", "blocking_calendar_ids", "confirmations"]
            ),
        ),
        metadata=tenant.auth,
    )
    return str(created.event_type.event_type_id)


async def _ready(server: Server, tenant: Tenant, google: Google) -> tuple[res.Connection, str]:
    google.calendar.add_calendar(TEAM, "Team", "reader")
    conn = await _connect(server, tenant, google)
    return conn, await _use_google(server, tenant, conn.connection_id)


async def _slots(server: Server, tenant: Tenant, event_type_id: str) -> list[int]:
    reply = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, event_type_id=event_type_id, date=TUESDAY),
        metadata=tenant.auth,
    )
    return [s.start_time.seconds for s in reply.slots]


def _book(
    tenant: Tenant, event_type_id: str, hours: float, email: str = "pat@example.com"
) -> api.BookRequest:
    return api.BookRequest(
        agent_id=tenant.agent_id,
        event_type_id=event_type_id,
        start_time=ts(TUESDAY_9AM + timedelta(hours=hours)),
        caller=res.Caller(name="Pat Caller", email=email, phone="+12125550100"),
        call_id="call-1",
    )


def _at(hours: float) -> int:
    return int((TUESDAY_9AM + timedelta(hours=hours)).timestamp())


# Connect, calendars, connection test ---------------------------------------------------------


async def test_connect_lists_calendars_and_keeps_the_refresh_token_encrypted(
    server: Server, app: CalendarApp, tenant: Tenant, google: Google
) -> None:
    google.calendar.add_calendar("shared@group.calendar.google.com", "Shared", "writer")
    google.calendar.add_calendar(TEAM, "Team", "reader")
    conn = await _connect(server, tenant, google)
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    assert conn.external_account == USER
    assert conn.default_calendar_id == USER
    refresh = next(iter(google.tokens.refresh_tokens))
    async with app.deps.db.read() as session:
        row = await session.get(t.Connection, conn.connection_id)
    assert row is not None
    assert row.credentials is not None
    assert refresh not in row.credentials
    assert json.loads(app.deps.cipher.decrypt(row.credentials, context=row.id))[
        "refresh_token"
    ] == (refresh)

    first = await server.stub.ListCalendars(
        api.ListCalendarsRequest(connection_id=conn.connection_id, page_size=2),
        metadata=tenant.auth,
    )
    assert first.next_page_token
    second = await server.stub.ListCalendars(
        api.ListCalendarsRequest(
            connection_id=conn.connection_id, page_size=2, page_token=first.next_page_token
        ),
        metadata=tenant.auth,
    )
    assert not second.next_page_token
    calendars = {c.calendar_id: c for c in [*first.calendars, *second.calendars]}
    assert set(calendars) == {USER, "shared@group.calendar.google.com", TEAM}
    assert calendars[USER].primary
    assert calendars[USER].writable
    assert calendars["shared@group.calendar.google.com"].writable
    assert not calendars[TEAM].writable
    assert not calendars[TEAM].primary
    assert google.calendar.query_of("calendarList.list")[0]["maxResults"] == "2"

    # An expired access token is refreshed once and the call retried.
    refreshes = google.tokens.refreshes
    google.tokens.expire_access_tokens()
    check = await server.stub.TestConnection(
        api.TestConnectionRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert check.ok
    assert check.can_read_availability
    assert check.can_create_events
    assert google.tokens.refreshes == refreshes + 1


async def test_consent_without_the_events_scope_is_refused(
    server: Server, tenant: Tenant, google: Google
) -> None:
    params = await _consent(server, tenant)
    code = google.tokens.issue_code(params, scopes=[FREEBUSY, CALENDAR_LIST])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect_code(server, tenant, code, params["state"])
    assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_PROVIDER_SCOPES")
    listed = await server.stub.ListConnections(api.ListConnectionsRequest(), metadata=tenant.auth)
    assert [c.provider for c in listed.connections] == [res.PROVIDER_BUILTIN]


async def test_forged_and_replayed_states_are_refused(
    server: Server, tenant: Tenant, google: Google
) -> None:
    params = await _consent(server, tenant)
    code = google.tokens.issue_code(params)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect_code(server, tenant, code, "forged-" + params["state"][7:])
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "OAUTH_STATE_INVALID")
    connected = await _connect_code(server, tenant, code, params["state"])
    assert connected.connection.status == res.CONNECTION_STATUS_CONNECTED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect_code(server, tenant, code, params["state"])
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "OAUTH_STATE_INVALID")
    assert google.tokens.exchanges == 1


# Slots, Book, Reschedule, Cancel -------------------------------------------------------------


async def test_slots_book_reschedule_cancel(
    server: Server, app: CalendarApp, tenant: Tenant, google: Google
) -> None:
    conn, event_type_id = await _ready(server, tenant, google)
    cal = google.calendar
    cal.add_event(
        USER, TUESDAY_9AM + timedelta(hours=1), TUESDAY_9AM + timedelta(hours=1.5), "Dentist"
    )
    cal.add_event(TEAM, TUESDAY_9AM + timedelta(hours=2), TUESDAY_9AM + timedelta(hours=2.5), "All")
    slots = await _slots(server, tenant, event_type_id)
    assert _at(0) in slots
    assert _at(1) not in slots  # busy on the booking calendar
    assert _at(2) not in slots  # busy on a calendar that only blocks time
    assert cal.count("events.list") == 0
    assert {i["id"] for i in cal.calls[-1][2]["items"]} == {USER, TEAM}

    booked = await server.stub.Book(_book(tenant, event_type_id, 0), metadata=tenant.auth)
    appointment = booked.appointment
    assert appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    [event] = cal.live_events(USER)[1:]
    assert event["id"] == event_id(appointment.appointment_id)
    assert appointment.appointment_id in event["id"]
    assert event["attendees"][0]["email"] == "pat@example.com"
    assert event["extendedProperties"]["private"]["gleam_appointment_id"] == (
        appointment.appointment_id
    )
    assert "+1212" not in event["description"]  # no phone number in the owner's calendar
    assert cal.query_of("events.insert") == [{"sendUpdates": "all"}]

    # The inserted event is busy time in freeBusy itself, not only in our claims.
    async with app.deps.db.read() as session:
        row = await session.get(t.Connection, conn.connection_id)
    assert row is not None
    busy = await provider_for(app.deps, row).busy(
        (USER,), TUESDAY_9AM, TUESDAY_9AM + timedelta(hours=4), Deadline.after(5)
    )
    assert any(b.start == TUESDAY_9AM for b in busy)

    moved = await server.stub.Reschedule(
        api.RescheduleRequest(
            appointment_id=appointment.appointment_id,
            agent_id=tenant.agent_id,
            start_time=ts(TUESDAY_9AM + timedelta(hours=4)),
        ),
        metadata=tenant.auth,
    )
    assert moved.appointment.start_time.seconds == _at(4)
    patched = cal.events[USER][event["id"]]
    assert patched["start"]["dateTime"] == "2026-11-24T18:00:00Z"
    assert cal.count("events.patch") == 1
    assert cal.count("events.insert") == 1

    cancelled = await server.stub.Cancel(
        api.CancelRequest(appointment_id=appointment.appointment_id, agent_id=tenant.agent_id),
        metadata=tenant.auth,
    )
    assert cancelled.appointment.status == res.APPOINTMENT_STATUS_CANCELLED
    assert cal.events[USER][event["id"]]["status"] == "cancelled"
    assert _at(0) in await _slots(server, tenant, event_type_id)

    # No email: no attendee, nobody notified. Then the owner deletes it in Google first.
    quiet = await server.stub.Book(_book(tenant, event_type_id, 5, email=""), metadata=tenant.auth)
    quiet_id = event_id(quiet.appointment.appointment_id)
    assert "attendees" not in cal.events[USER][quiet_id]
    assert cal.query_of("events.insert")[-1] == {"sendUpdates": "none"}
    cal.events[USER][quiet_id]["status"] = "cancelled"
    gone = await server.stub.Cancel(
        api.CancelRequest(
            appointment_id=quiet.appointment.appointment_id, agent_id=tenant.agent_id
        ),
        metadata=tenant.auth,
    )
    assert gone.appointment.status == res.APPOINTMENT_STATUS_CANCELLED


async def test_invites_off_means_no_attendee(
    server: Server, tenant: Tenant, google: Google
) -> None:
    google.calendar.add_calendar(TEAM, "Team", "reader")
    conn = await _connect(server, tenant, google)
    event_type_id = await _use_google(server, tenant, conn.connection_id, invites=False)
    booked = await server.stub.Book(_book(tenant, event_type_id, 0), metadata=tenant.auth)
    event = google.calendar.events[USER][event_id(booked.appointment.appointment_id)]
    assert "attendees" not in event
    assert google.calendar.query_of("events.insert") == [{"sendUpdates": "none"}]


# Failures ------------------------------------------------------------------------------------


async def test_revoked_refresh_token_needs_reauth(
    server: Server, tenant: Tenant, google: Google
) -> None:
    conn, event_type_id = await _ready(server, tenant, google)
    google.tokens.revoke(next(iter(google.tokens.refresh_tokens)))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _slots(server, tenant, event_type_id)
    info = assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CALENDAR_NOT_CONNECTED")
    assert info.metadata["connection_status"] == "NEEDS_REAUTH"
    got = await server.stub.GetConnection(
        api.GetConnectionRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert got.connection.status == res.CONNECTION_STATUS_NEEDS_REAUTH
    check = await server.stub.TestConnection(
        api.TestConnectionRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert not check.ok
    assert check.connection.status == res.CONNECTION_STATUS_NEEDS_REAUTH
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(_book(tenant, event_type_id, 0), metadata=tenant.auth)
    assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CALENDAR_NOT_CONNECTED")


async def test_retried_insert_after_a_lost_answer_makes_one_event(
    server: Server, app: CalendarApp, tenant: Tenant, google: Google, clock: Clock
) -> None:
    _, event_type_id = await _ready(server, tenant, google)
    cal = google.calendar
    cal.fail_next("events.insert", 503, after_commit=True)
    booked = await server.stub.Book(_book(tenant, event_type_id, 0), metadata=tenant.auth)
    assert booked.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert cal.count("events.insert") == 2  # the retry hit 409 and read the event back
    assert cal.count("events.get") == 1
    assert [e["id"] for e in cal.live_events(USER)] == [event_id(booked.appointment.appointment_id)]

    # Both attempts unanswered: PENDING, settled later by the reconciler's find_event.
    cal.fail_next("events.insert", 503, after_commit=True)
    cal.fail_next("events.insert", 503)
    pending = await server.stub.Book(_book(tenant, event_type_id, 2), metadata=tenant.auth)
    assert pending.appointment.status == res.APPOINTMENT_STATUS_PENDING
    clock.advance(timedelta(minutes=5))
    assert await reconcile_pending(app.deps) == {"confirmed": 1, "failed": 0, "unknown": 0}
    settled = await server.stub.GetAppointment(
        api.GetAppointmentRequest(appointment_id=pending.appointment.appointment_id),
        metadata=tenant.auth,
    )
    assert settled.appointment.status == res.APPOINTMENT_STATUS_CONFIRMED
    assert len(cal.live_events(USER)) == 2


async def test_rate_limits_answer_with_the_retry_time(
    server: Server, tenant: Tenant, google: Google
) -> None:
    _, event_type_id = await _ready(server, tenant, google)
    cal = google.calendar
    cal.fail_next("freebusy.query", 429, "rateLimitExceeded", headers={"Retry-After": "30"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _slots(server, tenant, event_type_id)
    info = assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_RATE_LIMITED")
    assert info.metadata["retry_after_seconds"] == "30"
    assert cal.count("freebusy.query") == 1  # 30 s does not fit the deadline: no retry

    # A short limit (403 rateLimitExceeded: Google sends no Retry-After) is waited out once.
    cal.fail_next("freebusy.query", 403, "rateLimitExceeded")
    assert _at(0) in await _slots(server, tenant, event_type_id)
    assert cal.count("freebusy.query") == 3


async def test_a_calendar_error_inside_freebusy_is_not_free_time(
    server: Server, tenant: Tenant, google: Google
) -> None:
    _, event_type_id = await _ready(server, tenant, google)
    google.calendar.freebusy_errors[TEAM] = "notFound"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _slots(server, tenant, event_type_id)
    assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Book(_book(tenant, event_type_id, 0), metadata=tenant.auth)
    assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE")
    assert google.calendar.count("events.insert") == 0


# Enterprise: service account ----------------------------------------------------------------


async def test_service_account_with_domain_wide_delegation(
    server: Server, app: CalendarApp, google: Google
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    email = "scheduler@acme-project.iam.gserviceaccount.com"
    google.tokens.service_accounts[email] = ServiceAccount(public_pem, list(SERVICE_ACCOUNT_SCOPES))
    info = {
        "type": "service_account",
        "project_id": "acme-project",
        "private_key_id": "k1",
        "private_key": private_pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",  # replaced by configuration
    }
    ent = await make_tenant(app, plan=Plan.ENTERPRISE, agent_id="ent")
    reply = await server.stub.Connect(
        api.ConnectRequest(
            google_service_account=api.GoogleServiceAccount(
                service_account_json=json.dumps(info), subject=USER
            )
        ),
        metadata=ent.auth,
    )
    assert reply.connection.status == res.CONNECTION_STATUS_CONNECTED
    assert reply.connection.external_account == USER
    assert google.tokens.jwt_grants == 1
    [grant] = google.tokens.access_tokens.values()
    assert grant.subject == USER

    event_type_id = await _use_google(server, ent, reply.connection.connection_id)
    google.calendar.add_calendar(TEAM, "Team", "reader")
    assert _at(0) in await _slots(server, ent, event_type_id)

    # A key the "administrator" never registered is refused as credentials.
    del google.tokens.service_accounts[email]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Connect(
            api.ConnectRequest(
                google_service_account=api.GoogleServiceAccount(
                    service_account_json=json.dumps(info), subject=USER
                )
            ),
            metadata=ent.auth,
        )
    assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CREDENTIALS_REJECTED")


# The emulator's own checker ------------------------------------------------------------------


def test_discovery_validator_catches_drift() -> None:
    v = DiscoveryValidator()
    good = {
        "id": "gleamabc12",
        "summary": "Cleaning",
        "start": {"dateTime": "2026-11-24T14:00:00Z", "timeZone": "America/New_York"},
        "end": {"dateTime": "2026-11-24T14:30:00Z"},
        "extendedProperties": {"private": {"k": "v"}},
    }
    v.check_body("Event", good, "events.insert")
    drifts = [
        ("Event", {**good, "start": {"datetime": "2026-11-24T14:00:00Z"}}, "events.insert"),
        ("Event", {**good, "summary": 5}, "events.insert"),
        ("Event", {k: x for k, x in good.items() if k != "end"}, "events.insert"),
        ("Event", {**good, "extendedProperties": {"private": {"k": 1}}}, ""),
        ("FreeBusyRequest", {"timeMin": "2026-11-24 14:00", "items": []}, "freebusy.query"),
        ("FreeBusyResponse", {"calendars": {"a": {"busy": [{"begin": "x"}]}}}, ""),
    ]
    for ref, body, method_id in drifts:
        with pytest.raises(SpecViolation):
            v.check_body(ref, body, method_id)
    v.check_params("events.insert", {"sendUpdates": "none"}, {"calendarId": "x"})
    with pytest.raises(SpecViolation):
        v.check_params("events.insert", {"sendUpdates": "everyone"}, {"calendarId": "x"})
    with pytest.raises(SpecViolation):
        v.check_params("calendarList.list", {"minAccessRole": "editor"}, {})
    with pytest.raises(SpecViolation):
        v.check_params("calendarList.list", {"pageSize": "5"}, {})


# Push notifications --------------------------------------------------------------------------

PUSH_URL = "https://calendar.example.com/webhooks/google"


@pytest.fixture
async def pushes(app: CalendarApp, google: Google) -> AsyncIterator[httpx.AsyncClient]:
    """Notifications from the emulator reach the service's HTTP app."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_http_app(app)), base_url="https://svc"
    ) as client:
        google.calendar.push_client = client
        yield client


async def _push_state(app: CalendarApp, connection_id: str) -> tuple[str, dict[str, object]]:
    async with app.deps.db.read() as session:
        row = await session.get(t.Connection, connection_id)
    assert row is not None
    sealed = row.provider_state["webhook_secret"]
    secret = app.deps.cipher.decrypt(sealed, context=webhook_secret_context(connection_id))
    return secret, dict(row.provider_state)


def _headers(channel: dict[str, str], token: str, number: int, state: str) -> dict[str, str]:
    return {
        "x-goog-channel-id": channel["id"],
        "x-goog-channel-token": token,
        "x-goog-resource-id": channel["resourceId"],
        "x-goog-resource-state": state,
        "x-goog-message-number": str(number),
    }


async def test_connect_watches_the_primary_calendar_with_the_secret_as_token(
    server: Server, app: CalendarApp, tenant: Tenant, google: Google
) -> None:
    conn = await _connect(server, tenant, google)
    [channel] = google.calendar.channels.values()
    secret, state = await _push_state(app, conn.connection_id)
    assert channel["calendar"] == USER  # no agent uses the connection yet: the primary one
    assert channel["address"] == PUSH_URL
    assert channel["token"] == secret
    assert len(channel["id"]) <= 64
    assert channel["id"].startswith(conn.connection_id + "-")
    assert state["push"] == "on"
    assert state["google_channels"] == [
        {
            "id": channel["id"],
            "resource_id": channel["resourceId"],
            "calendar_id": USER,
            "expires_ms": int(channel["expiration"]),
        }
    ]
    assert state["google_watched"] == [USER]
    assert state["google_channel_expires_ms"] == int(channel["expiration"])


async def test_connect_succeeds_when_the_watch_fails(
    server: Server, app: CalendarApp, tenant: Tenant, google: Google
) -> None:
    google.calendar.fail_next("events.watch", 503)
    conn = await _connect(server, tenant, google)
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    assert google.calendar.channels == {}
    _, state = await _push_state(app, conn.connection_id)
    assert state["push"] == "off"
    assert "google_channels" not in state


async def test_no_channel_is_asked_for_without_an_https_address(
    server: Server, app: CalendarApp, tenant: Tenant, google: Google
) -> None:
    app.deps.config = app.deps.config.model_copy(
        update={"public_base_url": "http://localhost:8080"}
    )
    conn = await _connect(server, tenant, google)
    assert conn.status == res.CONNECTION_STATUS_CONNECTED
    _, state = await _push_state(app, conn.connection_id)
    assert state["push"] == "off"
    assert await renew_push_subscriptions(app.deps) == {"subscribed": 0, "failed": 1}
    assert google.calendar.count("events.watch") == 0  # Google would refuse; never asked


async def test_a_notification_drops_held_availability_and_forgeries_change_nothing(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    google: Google,
    pushes: httpx.AsyncClient,
) -> None:
    conn, event_type_id = await _ready(server, tenant, google)
    secret, _ = await _push_state(app, conn.connection_id)
    [channel] = google.calendar.channels.values()
    assert _at(0) in await _slots(server, tenant, event_type_id)
    google.calendar.add_event(USER, TUESDAY_9AM, TUESDAY_9AM + timedelta(hours=1), "Dentist")
    assert _at(0) in await _slots(server, tenant, event_type_id)  # held, not re-read
    held = len(app.availability.busy_cache)
    assert held > 0

    [sync] = await google.calendar.notify(USER, state="sync")
    assert sync.status_code == 200
    assert len(app.availability.busy_cache) == held  # sync announces, changes nothing

    refused = [
        await pushes.post(PUSH_URL, headers=_headers(channel, "guess", 50, "exists")),
        await pushes.post(PUSH_URL, headers=_headers(channel, "", 51, "exists")),
        await pushes.post(
            PUSH_URL, headers=_headers({**channel, "id": "unknown"}, secret, 52, "exists")
        ),
        # Message 1 was the sync above: the same number again is a replay.
        await pushes.post(PUSH_URL, headers=_headers(channel, secret, 1, "exists")),
    ]
    assert [r.status_code for r in refused] == [401, 401, 401, 401]
    assert len(app.availability.busy_cache) == held

    [changed] = await google.calendar.notify(USER, state="exists")
    assert changed.status_code == 200
    assert _at(0) not in await _slots(server, tenant, event_type_id)


async def test_channels_near_expiry_are_renewed_then_the_old_one_stopped(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    google: Google,
    clock: Clock,
    pushes: httpx.AsyncClient,
) -> None:
    google.calendar.now = clock()
    google.calendar.channel_ttl = timedelta(hours=3)
    conn = await _connect(server, tenant, google)
    secret, _ = await _push_state(app, conn.connection_id)
    [old] = google.calendar.channels.values()
    assert await renew_push_subscriptions(app.deps) == {"subscribed": 0, "failed": 0}

    clock.advance(timedelta(hours=2, minutes=1))  # 59 minutes left: inside the window
    google.calendar.now = clock()
    assert await renew_push_subscriptions(app.deps) == {"subscribed": 1, "failed": 0}
    [new] = google.calendar.channels.values()  # the old one was stopped
    assert new["id"] != old["id"]
    assert new["token"] == secret
    _, renewed = await _push_state(app, conn.connection_id)
    assert [c["id"] for c in renewed["google_channels"]] == [new["id"]]
    assert renewed["google_channel_expires_ms"] == int(
        (clock() + timedelta(hours=3)).timestamp() * 1000
    )
    assert google.calendar.count("channels.stop") == 1

    # The old channel's notifications are no longer ours; the new one's are.
    stale = await pushes.post(PUSH_URL, headers=_headers(old, secret, 9, "exists"))
    assert stale.status_code == 401
    [fresh] = await google.calendar.notify(USER)
    assert fresh.status_code == 200


async def test_channels_follow_the_calendars_agents_book_on_and_block_with(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    google: Google,
    pushes: httpx.AsyncClient,
) -> None:
    shared = "shared@group.calendar.google.com"
    google.calendar.add_calendar(shared, "Shared", "writer")
    google.calendar.add_calendar(TEAM, "Team", "reader")
    conn = await _connect(server, tenant, google)
    [primary_channel] = google.calendar.channels.values()
    event_type_id = await _use_google(server, tenant, conn.connection_id)
    await server.stub.UpdateAgentCalendarSettings(
        api.UpdateAgentCalendarSettingsRequest(
            settings=res.AgentCalendarSettings(agent_id=tenant.agent_id, calendar_id=shared),
            update_mask=field_mask_pb2.FieldMask(paths=["calendar_id"]),
        ),
        metadata=tenant.auth,
    )
    # The agent books on the shared calendar and blocks with TEAM: both watched from the next
    # maintenance round, the primary calendar's channel stopped.
    assert await renew_push_subscriptions(app.deps) == {"subscribed": 1, "failed": 0}
    watched = sorted(c["calendar"] for c in google.calendar.channels.values())
    assert watched == sorted([shared, TEAM])
    assert primary_channel["id"] not in google.calendar.channels
    _, state = await _push_state(app, conn.connection_id)
    assert state["google_watched"] == sorted([shared, TEAM])
    assert await renew_push_subscriptions(app.deps) == {"subscribed": 0, "failed": 0}

    # A change on the booking calendar reaches us and drops held availability.
    assert _at(0) in await _slots(server, tenant, event_type_id)
    google.calendar.add_event(shared, TUESDAY_9AM, TUESDAY_9AM + timedelta(hours=1), "Busy")
    assert _at(0) in await _slots(server, tenant, event_type_id)  # held, not re-read
    [changed] = await google.calendar.notify(shared, state="exists")
    assert changed.status_code == 200
    assert _at(0) not in await _slots(server, tenant, event_type_id)
    # The stopped primary channel's notifications are no longer accepted.
    secret, _ = await _push_state(app, conn.connection_id)
    stale = await pushes.post(PUSH_URL, headers=_headers(primary_channel, secret, 7, "exists"))
    assert stale.status_code == 401


async def test_disconnect_stops_the_channel(
    server: Server, app: CalendarApp, tenant: Tenant, google: Google
) -> None:
    conn = await _connect(server, tenant, google)
    assert len(google.calendar.channels) == 1
    await server.stub.Disconnect(
        api.DisconnectRequest(connection_id=conn.connection_id), metadata=tenant.auth
    )
    assert google.calendar.channels == {}
    assert google.calendar.count("channels.stop") == 1
