"""Connecting Google Calendar: the consent URL, the redirect's code exchange, the scope check.

Authorization-code flow with PKCE (S256). The ``state`` is random, stored only as a SHA-256
digest with the account that asked, expires after ten minutes and is consumed atomically, so a
replayed or forged redirect is refused. Users can untick scopes on Google's consent screen, so
the granted scopes are compared with what the service needs and the missing ones are named.
The refresh token is then stored like any credential (encrypted) through the same checked
connect as the other providers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import update

from service.deadline import Deadline
from service.errors import (
    CredentialsRejected,
    FailedPrecondition,
    InvalidArgument,
    ProviderUnavailable,
)
from service.model import Connection, ProviderKind
from service.scheduling.connections import Connections
from service.scheduling.deps import Deps
from service.scheduling.registry import not_configured
from service.store import tables as t

STATE_TTL = timedelta(minutes=10)
CALLBACK_PATH = "/oauth/google/callback"
_PREFIX = "https://www.googleapis.com/auth/"
FREEBUSY = _PREFIX + "calendar.freebusy"
EVENTS_OWNED = _PREFIX + "calendar.events.owned"
EVENTS_ALL = _PREFIX + "calendar.events"
CALENDAR_LIST = _PREFIX + "calendar.calendarlist.readonly"
# Each need is met by any of these granted scopes (broader ones included).
NEEDS = {
    "free/busy": (
        FREEBUSY,
        _PREFIX + "calendar.events.freebusy",
        _PREFIX + "calendar.readonly",
        _PREFIX + "calendar",
    ),
    "events": (EVENTS_OWNED, EVENTS_ALL, _PREFIX + "calendar"),
    "calendar list": (
        CALENDAR_LIST,
        _PREFIX + "calendar.calendarlist",
        _PREFIX + "calendar.readonly",
        _PREFIX + "calendar",
    ),
}


class OAuthStateInvalid(InvalidArgument):
    default_reason = "OAUTH_STATE_INVALID"


@dataclass(frozen=True, slots=True)
class ConsentUrl:
    url: str
    state: str
    expires_at: datetime


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _challenge(verifier: str) -> str:
    raw = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def missing_scopes(granted: set[str], requested: list[str]) -> list[str]:
    """The requested scopes whose need no granted scope covers."""
    missing = []
    for need, covering in NEEDS.items():
        if not granted.intersection(covering):
            missing.append(next((s for s in requested if s in covering), need))
    return missing


class GoogleOAuth:
    def __init__(self, deps: Deps, connections: Connections) -> None:
        self._deps = deps
        self._connections = connections

    @property
    def redirect_uri(self) -> str:
        return self._deps.config.public_base_url.rstrip("/") + CALLBACK_PATH

    def _require_configured(self) -> None:
        config = self._deps.config
        if not (config.google_client_id and config.google_client_secret):
            error = not_configured(ProviderKind.GOOGLE)
            error.metadata["setting"] = "CALENDAR_GOOGLE_CLIENT_ID/CALENDAR_GOOGLE_CLIENT_SECRET"
            raise error

    async def consent_url(
        self, account_id: str, *, all_editable_calendars: bool, login_hint: str
    ) -> ConsentUrl:
        self._require_configured()
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        scopes = [FREEBUSY, EVENTS_ALL if all_editable_calendars else EVENTS_OWNED, CALENDAR_LIST]
        expires = self._deps.clock() + STATE_TTL
        digest = _digest(state)
        async with self._deps.db.write() as session:
            session.add(
                t.OAuthState(
                    state_digest=digest,
                    account_id=account_id,
                    provider=ProviderKind.GOOGLE.value,
                    code_verifier=self._deps.cipher.encrypt(verifier, context=digest),
                    scopes=scopes,
                    expires_at=expires,
                    created_at=self._deps.clock(),
                )
            )
        params = {
            "response_type": "code",
            "client_id": self._deps.config.google_client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "access_type": "offline",  # a refresh token, not just an hour of access
            "prompt": "consent",  # ...also when the user consented before
            "include_granted_scopes": "true",
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        return ConsentUrl(
            f"{self._deps.config.google_auth_url}?{urlencode(params)}", state, expires
        )

    async def _consume(self, state: str, account_id: str | None) -> tuple[str, str, list[str]]:
        """Marks the state used (once, atomically); returns (account id, verifier, scopes)."""
        if not state:
            raise OAuthStateInvalid("google_authorization_code.state", "is required")
        digest = _digest(state)
        now = self._deps.clock()
        async with self._deps.db.write() as session:
            row = await session.get(t.OAuthState, digest)
            refusal = None
            if row is None or row.provider != ProviderKind.GOOGLE.value:
                refusal = "is unknown"
            elif account_id is not None and row.account_id != account_id:
                refusal = "is unknown"  # another account's state: say nothing more
            elif row.used_at is not None:
                refusal = "was already used"
            elif row.expires_at <= now:
                refusal = "has expired; start the connection again"
            if refusal is not None or row is None:
                raise OAuthStateInvalid("google_authorization_code.state", refusal or "is unknown")
            claimed = await session.execute(
                update(t.OAuthState)
                .where(t.OAuthState.state_digest == digest, t.OAuthState.used_at.is_(None))
                .values(used_at=now)
            )
            if getattr(claimed, "rowcount", 1) != 1:
                raise OAuthStateInvalid("google_authorization_code.state", "was already used")
            verifier = self._deps.cipher.decrypt(row.code_verifier, context=digest)
            return row.account_id, verifier, list(row.scopes)

    async def _exchange(self, code: str, verifier: str, deadline: Deadline) -> dict[str, Any]:
        config = self._deps.config
        try:
            response = await self._deps.http.post(
                config.google_token_url,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "client_id": config.google_client_id,
                    "client_secret": config.google_client_secret,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": verifier,
                },
                timeout=max(0.1, min(deadline.remaining(), config.provider_timeout_seconds)),
            )
        except httpx.HTTPError as error:
            raise ProviderUnavailable("GOOGLE", "token endpoint did not answer") from error
        if response.status_code >= 500:
            raise ProviderUnavailable("GOOGLE", f"token endpoint answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as error:
            raise ProviderUnavailable("GOOGLE", "token endpoint answered garbage") from error
        if response.status_code != 200 or not isinstance(body, dict):
            reason = body.get("error", "refused") if isinstance(body, dict) else "refused"
            raise CredentialsRejected("GOOGLE", f"the authorization code was refused ({reason})")
        return body

    async def complete(
        self, account_id: str | None, code: str, state: str, deadline: Deadline
    ) -> Connection:
        """Redirect or dashboard: exchange the code, check scopes, store the connection."""
        self._require_configured()
        if not code:
            raise InvalidArgument("google_authorization_code.code", "is required")
        owner, verifier, requested = await self._consume(state, account_id)
        tokens = await self._exchange(code, verifier, deadline)
        granted = set(str(tokens.get("scope", "")).split())
        missing = missing_scopes(granted, requested)
        if missing:
            raise FailedPrecondition(
                "the Google account did not grant every permission the agent needs: "
                + ", ".join(missing),
                reason="INSUFFICIENT_PROVIDER_SCOPES",
                metadata={"provider": "GOOGLE", "missing_scopes": " ".join(missing)},
            )
        refresh = tokens.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise CredentialsRejected("GOOGLE", "no refresh token was issued; consent again")
        secret = json.dumps(
            {"type": "authorized_user", "refresh_token": refresh, "scopes": sorted(granted)}
        )
        return await self._connections.connect_external(
            owner, ProviderKind.GOOGLE, secret, "Google Calendar", deadline=deadline
        )

    async def connect_service_account(
        self, account_id: str, key_json: str, subject: str, deadline: Deadline
    ) -> Connection:
        """Enterprise: a service account acting for ``subject`` (domain-wide delegation)."""
        try:
            info = json.loads(key_json)
        except ValueError as error:
            raise InvalidArgument(
                "google_service_account.service_account_json", "is not JSON"
            ) from error
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise InvalidArgument(
                "google_service_account.service_account_json", "is not a service account key"
            )
        if "@" not in subject:
            raise InvalidArgument("google_service_account.subject", "must be the user's email")
        secret = json.dumps({"type": "service_account", "info": info, "subject": subject})
        return await self._connections.connect_external(
            account_id, ProviderKind.GOOGLE, secret, "Google Calendar", deadline=deadline
        )
