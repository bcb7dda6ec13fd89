"""A Twilio-like Messages API (POST and GET ``/2010-04-01/Accounts/{sid}/Messages.json``).

Checks basic auth, form fields and E.164 numbers like Twilio does (error 21211 for a bad "To"),
and honours an ``Idempotency-Key`` header the way compatible gateways do.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SID = "AC" + "0" * 32
TOKEN = "test-token"
SENDER = "+12125550199"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class SmsEmulator:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.requests = 0
        self.fail_next = 0  # answer 503 to this many sends
        self._by_key: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route(
                    "/2010-04-01/Accounts/{sid}/Messages.json",
                    self._messages,
                    methods=["GET", "POST"],
                )
            ]
        )

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    async def _messages(self, request: Request) -> JSONResponse:
        if request.path_params["sid"] != SID or not self._authorised(request):
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        if request.method == "GET":
            to = request.query_params.get("To")
            found = [m for m in self.sent if to is None or m["to"] == to]
            return JSONResponse({"messages": found})
        self.requests += 1
        if self.fail_next:
            self.fail_next -= 1
            return JSONResponse({"code": 20500, "message": "down"}, status_code=503)
        form = await request.form()
        to, sender, body = (str(form.get(k, "")) for k in ("To", "From", "Body"))
        if not _E164.match(to):
            return JSONResponse({"code": 21211, "message": "Invalid 'To'"}, status_code=400)
        if sender != SENDER or not body:
            return JSONResponse({"code": 21212, "message": "Invalid 'From'"}, status_code=400)
        key = request.headers.get("idempotency-key", "")
        if key and key in self._by_key:
            return JSONResponse(self._by_key[key], status_code=201)
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "date_created": datetime.now(UTC).isoformat(),
        }
        self.sent.append(message)
        if key:
            self._by_key[key] = message
        return JSONResponse(message, status_code=201)
