"""Confirmation texts through a Twilio-compatible REST API (``/2010-04-01/Accounts/.../Messages``).

Idempotency, as far as the API allows: Twilio's Messages API takes no idempotency key, so

* every request carries ``Idempotency-Key: <outbox row id>``; Twilio ignores it, compatible
  gateways that honour it (and the test emulator) drop a repeat;
* when an earlier attempt's outcome is unknown (the worker died or timed out after sending),
  the next attempt first lists the messages sent to that number from our sender since the
  row was written and skips the send when one with the same body is there.

What remains is a crash between the API accepting the text and that message showing in the
list, which Twilio makes visible within seconds; the lease (minutes) is far longer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from service.config import Settings
from service.notify.delivery import DeliveryError

API_VERSION = "2010-04-01"
MAX_LENGTH = 160


def sms_configured(config: Settings) -> bool:
    return bool(config.sms_account_sid and config.sms_auth_token and config.sms_from)


def shorten(body: str) -> str:
    """One message: whitespace collapsed, cut to 160 characters."""
    text = " ".join(body.split())
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1].rstrip() + "…"


def _messages_url(config: Settings) -> str:
    base = config.sms_api_url.rstrip("/")
    return f"{base}/{API_VERSION}/Accounts/{config.sms_account_sid}/Messages.json"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _auth(config: Settings) -> httpx.BasicAuth:
    return httpx.BasicAuth(config.sms_account_sid, config.sms_auth_token)


async def already_sent(
    http: httpx.AsyncClient, config: Settings, *, to: str, body: str, since: datetime
) -> bool:
    """Whether a text with this body went to ``to`` on or after ``since`` (day resolution)."""
    try:
        response = await http.get(
            _messages_url(config),
            params={"To": to, "From": config.sms_from, "DateSent>": since.date().isoformat()},
            auth=_auth(config),
            timeout=config.provider_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"sms: lookup {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise DeliveryError(f"sms: lookup answered {response.status_code}")
    messages = _json(response).get("messages") or []
    return any(
        m.get("body") == body and m.get("status") not in ("failed", "undelivered", "canceled")
        for m in messages
    )


async def send(http: httpx.AsyncClient, config: Settings, *, to: str, body: str, key: str) -> str:
    """Sends one text; returns the provider's message sid."""
    try:
        response = await http.post(
            _messages_url(config),
            data={"To": to, "From": config.sms_from, "Body": body},
            auth=_auth(config),
            headers={"Idempotency-Key": key},
            timeout=config.provider_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"sms: {type(exc).__name__}") from exc
    status = response.status_code
    if status in (200, 201):
        return str(_json(response).get("sid", ""))
    code = str(_json(response).get("code", ""))
    # 400 is about this message (e.g. 21211 invalid "To"); 401/403/404 and 429/5xx are our
    # configuration or their load, which a later attempt can get past.
    raise DeliveryError(f"sms: answered {status} {code}".strip(), permanent=status == 400)
