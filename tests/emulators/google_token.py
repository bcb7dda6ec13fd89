"""Google's OAuth 2.0 token endpoint, emulated: authorization codes with PKCE, refresh tokens.

Codes are issued by the test (``issue_code``), as Google would after the consent screen, with
the scopes the user left ticked. The exchange checks the client, redirect URI and PKCE verifier
exactly as Google does; a revoked refresh token answers 400 invalid_grant.

Every access token it issues is remembered with its scopes and expiry, so the Calendar API
emulator accepts exactly these (``check_access``). Revoking a refresh token also kills the
access tokens made from it, as Google does. Service accounts use the JWT-bearer grant: the
assertion's RS256 signature is verified against the registered public key, its audience must be
Google's token endpoint, and the delegated scopes must have been granted by the "administrator".
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field

import google.auth.exceptions
from google.auth import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Grant:
    challenge: str
    redirect_uri: str
    scopes: list[str]


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs assertions for Google's real endpoint, whatever token URL it posts to.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass
class AccessGrant:
    scopes: list[str]
    expires_at: float
    refresh_token: str = ""
    subject: str = ""


@dataclass
class ServiceAccount:
    public_key_pem: str
    delegated_scopes: list[str]


@dataclass
class GoogleTokenEmulator:
    client_id: str = "test-client.apps.googleusercontent.com"
    client_secret: str = "test-client-secret"
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, list[str]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    exchanges: int = 0
    refreshes: int = 0
    access_tokens: dict[str, AccessGrant] = field(default_factory=dict)
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    jwt_grants: int = 0
    lifetime_seconds: int = 3599

    def _access(self, scopes: list[str], *, refresh: str = "", subject: str = "") -> str:
        token = "ya29." + secrets.token_urlsafe(24)
        expires = time.time() + self.lifetime_seconds
        self.access_tokens[token] = AccessGrant(list(scopes), expires, refresh, subject)
        return token

    def check_access(self, token: str) -> AccessGrant | None:
        """The grant behind a live access token (None: unknown, revoked or expired)."""
        grant = self.access_tokens.get(token)
        if grant is None or grant.expires_at <= time.time():
            return None
        return grant

    def revoke(self, refresh_token: str) -> None:
        """What the user's "remove access" does: the refresh token and its access tokens die."""
        self.revoked.add(refresh_token)
        for grant in self.access_tokens.values():
            if grant.refresh_token == refresh_token:
                grant.expires_at = 0.0

    def expire_access_tokens(self) -> None:
        for grant in self.access_tokens.values():
            grant.expires_at = 0.0

    def issue_code(
        self, consent_url_params: dict[str, str], scopes: list[str] | None = None
    ) -> str:
        """What Google's consent screen does: a code bound to the PKCE challenge."""
        code = "4/" + secrets.token_urlsafe(16)
        granted = scopes if scopes is not None else consent_url_params["scope"].split()
        self.codes[code] = Grant(
            consent_url_params["code_challenge"], consent_url_params["redirect_uri"], granted
        )
        return code

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/token", self.token, methods=["POST"])])

    def _jwt_bearer(self, assertion: str) -> JSONResponse:
        self.jwt_grants += 1
        try:
            unverified = jwt.decode(assertion, verify=False)
            account = self.service_accounts.get(str(unverified.get("iss")))
            if account is None:
                raise ValueError("unknown issuer")
            claims = jwt.decode(
                assertion, certs=account.public_key_pem, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except (ValueError, google.auth.exceptions.GoogleAuthError):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400
            )
        scopes = str(claims.get("scope", "")).split()
        if not scopes or not set(scopes) <= set(account.delegated_scopes):
            return JSONResponse(
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens "
                    "using this method, or client not authorized for any of the scopes requested.",
                },
                401,
            )
        token = self._access(scopes, subject=str(claims.get("sub", "")))
        return JSONResponse(
            {"access_token": token, "expires_in": self.lifetime_seconds, "token_type": "Bearer"}
        )

    async def token(self, request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") == JWT_BEARER:
            # Service accounts authenticate with the signed assertion, not a client secret.
            return self._jwt_bearer(str(form.get("assertion", "")))
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            self.exchanges += 1
            grant = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if grant is None or grant.challenge != challenge:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "Bad Request"}, 400
                )
            if form.get("redirect_uri") != grant.redirect_uri:
                return JSONResponse({"error": "redirect_uri_mismatch"}, 400)
            refresh = "1//" + secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = grant.scopes
            return JSONResponse(
                {
                    "access_token": self._access(grant.scopes, refresh=refresh),
                    "expires_in": 3599,
                    "refresh_token": refresh,
                    "scope": " ".join(grant.scopes),
                    "token_type": "Bearer",
                }
            )
        if grant_type == "refresh_token":
            refresh = str(form.get("refresh_token"))
            if refresh in self.revoked or refresh not in self.refresh_tokens:
                return JSONResponse(
                    {
                        "error": "invalid_grant",
                        "error_description": "Token has been expired or revoked.",
                    },
                    400,
                )
            self.refreshes += 1
            return JSONResponse(
                {
                    "access_token": self._access(self.refresh_tokens[refresh], refresh=refresh),
                    "expires_in": 3599,
                    "scope": " ".join(self.refresh_tokens[refresh]),
                    "token_type": "Bearer",
                }
            )
        return JSONResponse({"error": "unsupported_grant_type"}, 400)
