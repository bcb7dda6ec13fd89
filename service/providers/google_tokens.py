"""Google access tokens: google-auth credentials refreshed over the shared httpx client.

google-auth does the OAuth work (refresh-token grant for consented users, the signed JWT-bearer
grant for service accounts with domain-wide delegation) but its ``refresh`` is synchronous and
wants a ``google.auth.transport.Request``. ``LoopBridge`` is that transport: ``refresh`` runs in a
worker thread and every HTTP call it makes is handed back to the event loop's shared
``httpx.AsyncClient``, so the token endpoint comes from configuration, shares the connection
pool and is reachable by the test emulators mounted on that client.

Access tokens are cached per process, keyed by connection and secret, until shortly before they
expire: adapters are built per RPC and a phone agent should not pay a token round trip on
every question.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import google.auth.exceptions
import google.auth.transport
import httpx
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from service.config import Settings
from service.deadline import Deadline
from service.errors import FailedPrecondition, ProviderUnavailable
from service.providers.base import ProviderAuthError

PROVIDER = "GOOGLE"
_PREFIX = "https://www.googleapis.com/auth/"
# What a service account asks for under domain-wide delegation: the same needs as consent,
# with events on every calendar the user can edit (an administrator grants these centrally).
SERVICE_ACCOUNT_SCOPES = (
    _PREFIX + "calendar.freebusy",
    _PREFIX + "calendar.events",
    _PREFIX + "calendar.calendarlist.readonly",
)
# Statuses google-auth would retry with seconds-long sleeps; we answer them at once instead and
# leave retrying to the client, whose deadline we cannot see from inside google-auth.
_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
# Refresh errors that mean "this grant is dead, ask the user again".
_REAUTH_ERRORS = frozenset({"invalid_grant", "unauthorized_client", "access_denied"})
# A token this close to expiry is refreshed rather than used.
_EXPIRY_MARGIN_SECONDS = 60.0
_CACHE_LIMIT = 10_000


def _transport_error(message: str) -> Exception:
    return google.auth.exceptions.TransportError(message)  # type: ignore[no-untyped-call]


class _BridgedResponse(google.auth.transport.Response):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def data(self) -> bytes:
        return self._response.content


class LoopBridge(google.auth.transport.Request):
    """A google-auth transport for a worker thread that runs each request on the event loop."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        loop: asyncio.AbstractEventLoop,
        deadline: Deadline,
        cap_seconds: float,
    ) -> None:
        self._http = http
        self._loop = loop
        self._deadline = deadline
        self._cap = cap_seconds

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _BridgedResponse:
        remaining = self._deadline.remaining()
        if remaining <= 0:
            raise _transport_error("the RPC deadline has passed")
        budget = min(remaining, self._cap)
        call = self._http.request(
            method, url, content=body, headers=dict(headers or {}), timeout=budget
        )
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        try:
            response = future.result(timeout=budget + 1.0)
        except (httpx.HTTPError, concurrent.futures.TimeoutError) as error:
            future.cancel()
            raise _transport_error(f"token endpoint: {type(error).__name__}") from error
        if response.status_code in _RETRYABLE:
            raise _transport_error(f"token endpoint answered {response.status_code}")
        return _BridgedResponse(response)


@dataclass(frozen=True, slots=True)
class Secret:
    """The stored credential, parsed: a consented user or a delegated service account."""

    kind: str
    scopes: tuple[str, ...]
    refresh_token: str = ""
    info: Mapping[str, Any] | None = None
    subject: str = ""

    @classmethod
    def parse(cls, raw: str) -> Secret:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ProviderAuthError("the stored Google credential is not readable")
        kind = data.get("type")
        if kind == "authorized_user" and isinstance(data.get("refresh_token"), str):
            scopes = tuple(str(s) for s in data.get("scopes") or ())
            return cls("authorized_user", scopes, refresh_token=data["refresh_token"])
        if kind == "service_account" and isinstance(data.get("info"), dict):
            return cls(
                "service_account",
                SERVICE_ACCOUNT_SCOPES,
                info=data["info"],
                subject=str(data.get("subject", "")),
            )
        raise ProviderAuthError("the stored Google credential has an unknown shape")


_cache: dict[str, tuple[str, float]] = {}


def _refresh_error(error: google.auth.exceptions.RefreshError) -> Exception:
    data = error.args[1] if len(error.args) > 1 else None
    code = str(data.get("error", "")) if isinstance(data, dict) else ""
    if code in _REAUTH_ERRORS:
        return ProviderAuthError(f"the token endpoint answered {code}")
    if code == "invalid_client":
        # Our OAuth client is wrong, not the user's grant: reconnecting would not help.
        return FailedPrecondition(
            "Google refused this server's OAuth client (invalid_client)",
            reason="PROVIDER_NOT_CONFIGURED",
            metadata={
                "provider": PROVIDER,
                "setting": "CALENDAR_GOOGLE_CLIENT_ID/CALENDAR_GOOGLE_CLIENT_SECRET",
            },
        )
    if getattr(error, "retryable", False):
        return ProviderUnavailable(PROVIDER, "token endpoint is temporarily unavailable")
    return ProviderAuthError(f"the token endpoint refused the refresh ({code or 'unknown'})")


class TokenSource:
    """Hands out a valid access token for one connection; refreshes it when asked to."""

    def __init__(
        self, http: httpx.AsyncClient, config: Settings, credentials: str, connection_id: str
    ) -> None:
        self._http = http
        self._config = config
        self.secret = Secret.parse(credentials)
        self._key = hashlib.sha256(f"{connection_id}\0{credentials}".encode()).hexdigest()

    def _credentials(self) -> user_credentials.Credentials | service_account.Credentials:
        config = self._config
        if self.secret.kind == "service_account":
            assert self.secret.info is not None
            # The token endpoint comes from configuration, not from the key file.
            info = dict(self.secret.info, token_uri=config.google_token_url)
            try:
                signed: service_account.Credentials = (
                    service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                        info,
                        scopes=list(SERVICE_ACCOUNT_SCOPES),
                        subject=self.secret.subject or None,
                    )
                )
                return signed
            except (ValueError, KeyError) as error:
                raise ProviderAuthError("the service account key is not usable") from error
        # No scopes on refresh: Google keeps what was granted, and asking again would make
        # google-auth reject an answer that lists them in another order or form.
        return user_credentials.Credentials(  # type: ignore[no-untyped-call]
            token=None,
            refresh_token=self.secret.refresh_token,
            token_uri=config.google_token_url,
            client_id=config.google_client_id,
            client_secret=config.google_client_secret,
        )

    async def token(self, deadline: Deadline, *, fresh: bool = False) -> str:
        cached = _cache.get(self._key)
        if cached is not None and not fresh and cached[1] > time.time():
            return cached[0]
        _cache.pop(self._key, None)
        creds = self._credentials()
        bridge = LoopBridge(
            self._http,
            asyncio.get_running_loop(),
            deadline,
            self._config.provider_timeout_seconds,
        )
        try:
            async with asyncio.timeout(max(0.0, deadline.remaining()) + 0.5):
                await asyncio.to_thread(creds.refresh, bridge)
        except google.auth.exceptions.RefreshError as error:
            raise _refresh_error(error) from error
        except (google.auth.exceptions.TransportError, TimeoutError) as error:
            raise ProviderUnavailable(PROVIDER, "token endpoint did not answer") from error
        except (google.auth.exceptions.GoogleAuthError, ValueError) as error:
            # A malformed token answer or an unusable key: never an INTERNAL error.
            raise ProviderUnavailable(PROVIDER, "token endpoint answered garbage") from error
        token = creds.token
        if not isinstance(token, str) or not token:
            raise ProviderUnavailable(PROVIDER, "token endpoint issued no access token")
        expiry = creds.expiry  # naive UTC, or None when the endpoint gave no lifetime
        now = datetime.now(UTC).replace(tzinfo=None)
        lifetime = (expiry - now).total_seconds() if expiry else 300.0
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[self._key] = (token, time.time() + lifetime - _EXPIRY_MARGIN_SECONDS)
        return token

    def forget(self) -> None:
        _cache.pop(self._key, None)
