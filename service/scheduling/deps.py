"""What every use case needs, built once at start-up and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from service.config import Settings
from service.store.crypto import CredentialCipher
from service.store.db import Database

if TYPE_CHECKING:
    from service.providers.base import CalendarProvider
    from service.store.tables import Connection

    ProviderFactory = Callable[["Deps", Connection], CalendarProvider]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Deps:
    config: Settings
    db: Database
    cipher: CredentialCipher
    # One pooled client for every provider call; adapters set per-request timeouts.
    http: httpx.AsyncClient
    clock: Callable[[], datetime] = field(default=utc_now)
    # Replaces the registry's adapter choice (tests wrap providers to make them fail).
    provider_factory: ProviderFactory | None = None
