"""Google's OAuth 2.0 token endpoint, emulated: authorization codes with PKCE, refresh tokens.

Codes are issued by the test (``issue_code``), as Google would after the consent screen, with
the scopes the user left ticked. The exchange checks the client, redirect URI and PKCE verifier
exactly as Google does; a revoked refresh token answers 400 invalid_grant.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


@dataclass
class Grant:
    challenge: str
    redirect_uri: str
    scopes: list[str]


@dataclass
class GoogleTokenEmulator:
    client_id: str = "test-client.apps.googleusercontent.com"
    client_secret: str = "test-client-secret"
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, list[str]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    exchanges: int = 0

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

    async def token(self, request: Request) -> JSONResponse:
        form = await request.form()
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
                    "access_token": "ya29." + secrets.token_urlsafe(24),
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
            return JSONResponse(
                {
                    "access_token": "ya29." + secrets.token_urlsafe(24),
                    "expires_in": 3599,
                    "scope": " ".join(self.refresh_tokens[refresh]),
                    "token_type": "Bearer",
                }
            )
        return JSONResponse({"error": "unsupported_grant_type"}, 400)
