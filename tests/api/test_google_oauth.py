"""Google consent: PKCE consent URL, single-use expiring state, granted-scope check, callback."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import pytest

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.config import Settings
from service.http.app import create_http_app
from service.model import Plan
from service.scheduling.app import CalendarApp
from service.scheduling.google_oauth import CALENDAR_LIST, EVENTS_OWNED, FREEBUSY
from tests.conftest import Server
from tests.emulators.google_calendar import GoogleCalendarEmulator, google_client
from tests.emulators.google_token import GoogleTokenEmulator
from tests.helpers import Clock, Tenant, assert_error, make_tenant

TOKEN_URL = "http://google.test/token"
API_URL = "http://calendar.google.test/calendar/v3"


@pytest.fixture
def config(config: Settings) -> Settings:
    return config.model_copy(
        update={
            "google_client_id": GoogleTokenEmulator.client_id,
            "google_client_secret": GoogleTokenEmulator.client_secret,
            "google_token_url": TOKEN_URL,
            "google_api_url": API_URL,
            "public_base_url": "https://calendar.example.com",
        }
    )


@pytest.fixture
async def google(app: CalendarApp) -> GoogleTokenEmulator:
    emulator = GoogleTokenEmulator()
    await app.deps.http.aclose()
    # The Google adapter is registered, so a connect also reaches the Calendar API.
    app.deps.http = google_client(TOKEN_URL, API_URL, emulator, GoogleCalendarEmulator(emulator))
    return emulator


async def _consent(server: Server, tenant: Tenant) -> dict[str, str]:
    reply = await server.stub.GetGoogleConsentUrl(
        api.GetGoogleConsentUrlRequest(login_hint="owner@example.com"), metadata=tenant.auth
    )
    parts = urlsplit(reply.consent_url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params["state"] == reply.state
    return params


async def test_consent_url_asks_for_offline_pkce_and_minimal_scopes(
    server: Server, tenant: Tenant, google: GoogleTokenEmulator
) -> None:
    params = await _consent(server, tenant)
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert params["scope"].split() == [FREEBUSY, EVENTS_OWNED, CALENDAR_LIST]
    assert params["redirect_uri"] == "https://calendar.example.com/oauth/google/callback"
    assert params["client_id"] == google.client_id
    assert params["login_hint"] == "owner@example.com"
    everything = await server.stub.GetGoogleConsentUrl(
        api.GetGoogleConsentUrlRequest(all_editable_calendars=True), metadata=tenant.auth
    )
    assert (
        "calendar.events+" in everything.consent_url
        or "calendar.events%20" in everything.consent_url
    )


async def _connect(server: Server, tenant: Tenant, code: str, state: str) -> api.ConnectResponse:
    return await server.stub.Connect(
        api.ConnectRequest(
            google_authorization_code=api.GoogleAuthorizationCode(code=code, state=state)
        ),
        metadata=tenant.auth,
    )


async def test_forged_reused_foreign_and_expired_states_are_refused(
    server: Server, app: CalendarApp, tenant: Tenant, google: GoogleTokenEmulator, clock: Clock
) -> None:
    params = await _consent(server, tenant)
    code = google.issue_code(params)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect(server, tenant, code, "forged-state")
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "OAUTH_STATE_INVALID")

    other = await make_tenant(app, agent_id="other")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect(server, other, code, params["state"])
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "OAUTH_STATE_INVALID")

    # First real use consumes the state; the exchange passes the emulator's PKCE check and
    # the Google adapter connects...
    connected = await _connect(server, tenant, code, params["state"])
    assert connected.connection.status == res.CONNECTION_STATUS_CONNECTED
    assert google.exchanges == 1
    # ...so a replay is refused without reaching Google.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect(server, tenant, code, params["state"])
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "OAUTH_STATE_INVALID")
    assert "already used" in caught.value.details()
    assert info.metadata["field"] == "google_authorization_code.state"
    assert google.exchanges == 1

    late = await _consent(server, tenant)
    clock.advance(timedelta(minutes=11))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect(server, tenant, google.issue_code(late), late["state"])
    assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "OAUTH_STATE_INVALID")
    assert "expired" in caught.value.details()


async def test_unticked_scopes_are_named(
    server: Server, tenant: Tenant, google: GoogleTokenEmulator
) -> None:
    params = await _consent(server, tenant)
    code = google.issue_code(params, scopes=[FREEBUSY, CALENDAR_LIST])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect(server, tenant, code, params["state"])
    info = assert_error(
        caught.value, grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_PROVIDER_SCOPES"
    )
    assert info.metadata["missing_scopes"] == EVENTS_OWNED


async def test_bad_code_is_credentials_rejected(
    server: Server, tenant: Tenant, google: GoogleTokenEmulator
) -> None:
    params = await _consent(server, tenant)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _connect(server, tenant, "4/not-issued", params["state"])
    assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "CREDENTIALS_REJECTED")


async def test_callback_page_reports_plainly_and_never_echoes_the_code(
    app: CalendarApp, server: Server, tenant: Tenant, google: GoogleTokenEmulator
) -> None:
    params = await _consent(server, tenant)
    code = google.issue_code(params, scopes=[FREEBUSY])
    http_app = create_http_app(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=http_app), base_url="http://svc"
    ) as client:
        page = await client.get(
            "/oauth/google/callback", params={"code": code, "state": params["state"]}
        )
        assert page.status_code == 400
        assert "did not grant every permission" in page.text
        assert code not in page.text
        denied = await client.get("/oauth/google/callback", params={"error": "access_denied"})
        assert denied.status_code == 400
        assert "access_denied" in denied.text


async def test_service_accounts_are_for_enterprise(server: Server, app: CalendarApp) -> None:
    pro = await make_tenant(app)
    request = api.ConnectRequest(
        google_service_account=api.GoogleServiceAccount(
            service_account_json='{"type": "service_account"}', subject="owner@example.com"
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Connect(request, metadata=pro.auth)
    assert_error(caught.value, grpc.StatusCode.FAILED_PRECONDITION, "PLAN_REQUIRED")
    ent = await make_tenant(app, plan=Plan.ENTERPRISE, agent_id="ent")
    bad = api.ConnectRequest(
        google_service_account=api.GoogleServiceAccount(
            service_account_json="not json", subject="owner@example.com"
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.Connect(bad, metadata=ent.auth)
    info = assert_error(caught.value, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert info.metadata["field"] == "google_service_account.service_account_json"
