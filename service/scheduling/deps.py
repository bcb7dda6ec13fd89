"""What every use case needs, built once at start-up and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from service.config import Settings
from service.store.crypto import CredentialCipher
from service.store.db import Database


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Deps:
    config: Settings
    db: Database
    cipher: CredentialCipher
    clock: Callable[[], datetime] = field(default=utc_now)
