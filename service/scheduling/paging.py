"""Opaque page tokens and page-size rules (AIP-158)."""

from __future__ import annotations

import base64
import json
from typing import Any

from service.errors import InvalidArgument


def page_size(value: int, *, default: int, maximum: int) -> int:
    if value < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return default if value == 0 else min(value, maximum)


def encode_token(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise InvalidArgument("page_token", "is not a token this service issued") from exc
    if not isinstance(value, dict):
        raise InvalidArgument("page_token", "is not a token this service issued")
    return value
