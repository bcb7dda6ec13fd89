"""Provider pushes that tell us a calendar changed: Cal.com and Calendly webhooks, Google
push notifications.

Each connection has its own signing secret (generated at connect, stored encrypted). Cal.com
and Calendly post to the connection's own URL, ``/webhooks/{provider}/{connection_id}``. Google
signs nothing: its notifications go to one URL, ``/webhooks/google``, name their channel
(``X-Goog-Channel-ID``, which starts with the connection id and is stored in the connection's
``provider_state``) and echo the channel token, which is the connection's secret. A push whose
signature or token does not verify, or that is too old or already seen (replay), gets 401 and
changes nothing; a valid one drops the connection's held availability on every replica.
Nothing from the body is trusted beyond that: we re-read availability from the provider, so a
webhook can only make us look again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.http.base import RouteFactory
from service.model import ConnectionStatus, ProviderKind
from service.providers.google import channel_pairs, connection_of_channel
from service.scheduling.app import CalendarApp
from service.scheduling.connections import webhook_secret_context
from service.store import tables as t
from service.store.crypto import DecryptionError

# Calendly signs a timestamp; older pushes are refused as replays (its docs suggest minutes).
TOLERANCE_SECONDS = 180
SEEN_LIMIT = 10_000
# Google's resource states: "sync" announces a new channel (nothing changed); the others mean
# the watched calendar's events changed.
GOOGLE_CHANGED = frozenset({"exists", "not_exists"})


def calcom_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def calendly_signature(secret: str, timestamp: str, body: bytes) -> str:
    signed = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class Webhooks(RouteFactory):
    def __init__(self, app: CalendarApp) -> None:
        super().__init__(app)
        # Signatures already accepted, so a captured push cannot be replayed (per process;
        # the timestamp tolerance bounds what another replica could be shown).
        self._seen: OrderedDict[str, None] = OrderedDict()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/webhooks/calcom/{connection_id}", self.calcom, methods=["POST"]),
            Route("/webhooks/calendly/{connection_id}", self.calendly, methods=["POST"]),
            Route("/webhooks/google", self.google, methods=["POST"]),
        ]

    async def _secret(self, connection_id: str, provider: ProviderKind) -> str | None:
        async with self.app.deps.db.read() as session:
            row = await session.scalar(
                select(t.Connection).where(
                    t.Connection.id == connection_id, t.Connection.provider == provider.value
                )
            )
        return self._unsealed(row)

    def _unsealed(self, row: t.Connection | None) -> str | None:
        """The connection's webhook secret; None for no connection, a revoked one, or a
        secret that does not decrypt."""
        if row is None or row.status == ConnectionStatus.REVOKED.value:
            return None
        sealed = row.provider_state.get("webhook_secret")
        if not isinstance(sealed, str):
            return None
        try:
            return self.app.deps.cipher.decrypt(sealed, context=webhook_secret_context(row.id))
        except DecryptionError:
            return None

    def _first_time(self, signature: str) -> bool:
        if signature in self._seen:
            return False
        self._seen[signature] = None
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        return True

    async def _accept(self, connection_id: str) -> Response:
        await self.app.invalidator.connection_changed(connection_id, None)
        return JSONResponse({"status": "ok"})

    @staticmethod
    def _refuse() -> Response:
        # One answer for every failure: do not tell a prober which check failed.
        return JSONResponse({"error": "invalid signature"}, status_code=401)

    async def calcom(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        body = await request.body()
        given = request.headers.get("x-cal-signature-256", "")
        secret = await self._secret(connection_id, ProviderKind.CALCOM)
        if secret is None or not given:
            return self._refuse()
        if not hmac.compare_digest(given, calcom_signature(secret, body)):
            return self._refuse()
        # Cal.com signs no timestamp: the payload's createdAt bounds replays instead.
        try:
            created = datetime.fromisoformat(str(json.loads(body)["createdAt"]))
        except (ValueError, KeyError, TypeError):
            return self._refuse()
        if abs(self.app.deps.clock().timestamp() - created.timestamp()) > TOLERANCE_SECONDS:
            return self._refuse()
        if not self._first_time(given):
            return self._refuse()
        return await self._accept(connection_id)

    async def calendly(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        body = await request.body()
        header = request.headers.get("calendly-webhook-signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        timestamp, given = parts.get("t", ""), parts.get("v1", "")
        secret = await self._secret(connection_id, ProviderKind.CALENDLY)
        if secret is None or not timestamp.isdigit() or not given:
            return self._refuse()
        if not hmac.compare_digest(given, calendly_signature(secret, timestamp, body)):
            return self._refuse()
        if abs(self.app.deps.clock().timestamp() - int(timestamp)) > TOLERANCE_SECONDS:
            return self._refuse()
        if not self._first_time(given):
            return self._refuse()
        return await self._accept(connection_id)

    async def _google_channel(self, channel_id: str) -> tuple[str, str] | None:
        """(connection id, webhook secret) of the Google connection that has this channel open
        now. The channel id starts with its connection's id, so this is a read by key; a
        replaced or stopped channel is no longer stored, so it is refused."""
        connection_id = connection_of_channel(channel_id)
        async with self.app.deps.db.read() as session:
            row = await session.scalar(
                select(t.Connection).where(
                    t.Connection.id == connection_id,
                    t.Connection.provider == ProviderKind.GOOGLE.value,
                )
            )
        if row is None or channel_id not in {c for c, _ in channel_pairs(row.provider_state)}:
            return None
        secret = self._unsealed(row)
        return None if secret is None else (row.id, secret)

    async def google(self, request: Request) -> Response:
        channel_id = request.headers.get("x-goog-channel-id", "")
        given = request.headers.get("x-goog-channel-token", "")
        state = request.headers.get("x-goog-resource-state", "")
        number = request.headers.get("x-goog-message-number", "")
        if not channel_id or not given or not number.isdigit():
            return self._refuse()
        found = await self._google_channel(channel_id)
        if found is None:
            return self._refuse()
        connection_id, secret = found
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return self._refuse()
        # The token is static, so a captured notification verifies forever: a message number
        # seen before on this channel is a replay.
        if not self._first_time(f"google:{channel_id}:{number}"):
            return self._refuse()
        if state not in GOOGLE_CHANGED:
            return JSONResponse({"status": "ok"})  # "sync" (or unknown): nothing changed
        return await self._accept(connection_id)
