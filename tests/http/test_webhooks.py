"""Signed provider pushes drop held availability; forged, unsigned or replayed ones do not."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from service.http.app import create_http_app
from service.http.webhooks import calcom_signature, calendly_signature
from service.model import ProviderKind
from service.scheduling.app import CalendarApp
from service.scheduling.connections import webhook_secret_context
from service.store import tables as t
from tests.helpers import Clock, Tenant

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


async def _connection(app: CalendarApp, tenant: Tenant, kind: ProviderKind) -> tuple[str, str]:
    """A stored external connection with its webhook secret, as Connect leaves it."""
    connection_id, secret = uuid4().hex, secrets.token_urlsafe(32)
    async with app.deps.db.write() as session:
        session.add(
            t.Connection(
                id=connection_id,
                account_id=tenant.account_id,
                provider=kind.value,
                status="CONNECTED",
                credentials=app.deps.cipher.encrypt("token", context=connection_id),
                provider_state={
                    "webhook_secret": app.deps.cipher.encrypt(
                        secret, context=webhook_secret_context(connection_id)
                    )
                },
            )
        )
    return connection_id, secret


async def _held(app: CalendarApp, connection_id: str) -> int:
    async def fetch(a: datetime, b: datetime) -> list[tuple[date, tuple[object, ...]]]:
        return [(a.date(), ())]

    await app.availability.busy_cache.get(
        connection_id, "busy:x", MONDAY, MONDAY + timedelta(days=1), fetch, budget=1
    )
    return len(app.availability.busy_cache)


@pytest.fixture
async def http(app: CalendarApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_http_app(app)), base_url="http://svc"
    ) as client:
        yield client


async def test_calcom_webhooks(
    app: CalendarApp, tenant: Tenant, http: httpx.AsyncClient, clock: Clock
) -> None:
    connection_id, secret = await _connection(app, tenant, ProviderKind.CALCOM)
    url = f"/webhooks/calcom/{connection_id}"
    body = json.dumps(
        {"triggerEvent": "BOOKING_CREATED", "createdAt": clock().isoformat(), "payload": {}}
    ).encode()
    assert await _held(app, connection_id) == 1

    forged = await http.post(url, content=body, headers={"x-cal-signature-256": "00" * 32})
    unsigned = await http.post(url, content=body)
    wrong_key = await http.post(
        url, content=body, headers={"x-cal-signature-256": calcom_signature("guess", body)}
    )
    assert (forged.status_code, unsigned.status_code, wrong_key.status_code) == (401, 401, 401)
    assert len(app.availability.busy_cache) == 1  # nothing changed

    signed = {"x-cal-signature-256": calcom_signature(secret, body)}
    ok = await http.post(url, content=body, headers=signed)
    assert ok.status_code == 200
    assert len(app.availability.busy_cache) == 0

    await _held(app, connection_id)
    replay = await http.post(url, content=body, headers=signed)
    assert replay.status_code == 401
    assert len(app.availability.busy_cache) == 1

    old = json.dumps(
        {"triggerEvent": "BOOKING_CREATED", "createdAt": (clock() - timedelta(hours=1)).isoformat()}
    ).encode()
    stale = await http.post(
        url, content=old, headers={"x-cal-signature-256": calcom_signature(secret, old)}
    )
    assert stale.status_code == 401

    unknown = await http.post(f"/webhooks/calcom/{uuid4().hex}", content=body, headers=signed)
    assert unknown.status_code == 401


async def test_calendly_webhooks(
    app: CalendarApp, tenant: Tenant, http: httpx.AsyncClient, clock: Clock
) -> None:
    connection_id, secret = await _connection(app, tenant, ProviderKind.CALENDLY)
    url = f"/webhooks/calendly/{connection_id}"
    body = json.dumps({"event": "invitee.created", "payload": {}}).encode()
    now = str(int(clock().timestamp()))

    def header(timestamp: str, key: str = secret, content: bytes = body) -> dict[str, str]:
        signature = calendly_signature(key, timestamp, content)
        return {"calendly-webhook-signature": f"t={timestamp},v1={signature}"}

    await _held(app, connection_id)
    assert (await http.post(url, content=body)).status_code == 401
    assert (await http.post(url, content=body, headers=header(now, key="guess"))).status_code == 401
    late = str(int((clock() - timedelta(minutes=10)).timestamp()))
    assert (await http.post(url, content=body, headers=header(late))).status_code == 401
    tampered = {**header(now)}
    assert (await http.post(url, content=body + b" ", headers=tampered)).status_code == 401
    assert len(app.availability.busy_cache) == 1

    accepted = await http.post(url, content=body, headers=header(now))
    assert accepted.status_code == 200
    assert len(app.availability.busy_cache) == 0
    await _held(app, connection_id)
    assert (await http.post(url, content=body, headers=header(now))).status_code == 401
    assert len(app.availability.busy_cache) == 1

    # A Calendly secret does not open the Cal.com door of the same connection.
    assert (
        await http.post(
            f"/webhooks/calcom/{connection_id}",
            content=body,
            headers={"x-cal-signature-256": calcom_signature(secret, body)},
        )
    ).status_code == 401


async def test_google_notifications_need_a_live_connection_and_its_channel_token(
    app: CalendarApp, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    connection_id, secret = await _connection(app, tenant, ProviderKind.GOOGLE)
    async with app.deps.db.write() as session:
        row = await session.get(t.Connection, connection_id)
        assert row is not None
        channel_id = f"{connection_id}-chan1"
        row.provider_state = {
            **row.provider_state,
            "google_channels": [{"id": channel_id, "resource_id": "res-1", "calendar_id": "c"}],
        }

    def headers(number: int, token: str = secret, channel: str = channel_id) -> dict[str, str]:
        return {
            "x-goog-channel-id": channel,
            "x-goog-channel-token": token,
            "x-goog-resource-state": "exists",
            "x-goog-message-number": str(number),
        }

    await _held(app, connection_id)
    assert (await http.post("/webhooks/google", headers=headers(1, token="x"))).status_code == 401
    assert (await http.post("/webhooks/google", headers=headers(2, channel="x"))).status_code == 401
    # The right connection, but not one of its channels.
    other = headers(6, channel=f"{connection_id}-chan2")
    assert (await http.post("/webhooks/google", headers=other)).status_code == 401
    no_number = {k: v for k, v in headers(3).items() if k != "x-goog-message-number"}
    assert (await http.post("/webhooks/google", headers=no_number)).status_code == 401
    assert len(app.availability.busy_cache) == 1

    assert (await http.post("/webhooks/google", headers=headers(4))).status_code == 200
    assert len(app.availability.busy_cache) == 0

    # Disconnected: the same channel and token no longer open anything.
    async with app.deps.db.write() as session:
        row = await session.get(t.Connection, connection_id)
        assert row is not None
        row.status = "REVOKED"
    await _held(app, connection_id)
    assert (await http.post("/webhooks/google", headers=headers(5))).status_code == 401
    assert len(app.availability.busy_cache) == 1
