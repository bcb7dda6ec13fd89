"""Wires the use cases together once per process."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from service.config import Settings
from service.scheduling.accounts import Authenticator
from service.scheduling.agents import AgentDirectory
from service.scheduling.availability import AvailabilityService
from service.scheduling.booking import Booking
from service.scheduling.connections import Connections
from service.scheduling.deps import Deps
from service.scheduling.google_oauth import GoogleOAuth
from service.scheduling.invalidation import Invalidator
from service.store.crypto import CredentialCipher
from service.store.db import Database


@dataclass(slots=True)
class CalendarApp:
    deps: Deps
    auth: Authenticator
    agents: AgentDirectory
    connections: Connections
    availability: AvailabilityService
    booking: Booking
    google_oauth: GoogleOAuth
    invalidator: Invalidator

    @classmethod
    def build(cls, config: Settings, db: Database | None = None) -> CalendarApp:
        deps = Deps(
            config=config,
            db=db or Database(config.sqlalchemy_url, pool_size=config.database_pool_size),
            cipher=CredentialCipher.from_config(config.encryption_keys, config.key_file),
            http=httpx.AsyncClient(
                timeout=config.provider_timeout_seconds,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                headers={"user-agent": "gleam-calendar/0.1"},
            ),
        )
        invalidator = Invalidator(deps)
        agents = AgentDirectory(deps, invalidator)
        availability = AvailabilityService(deps, agents)
        invalidator.on_connection(availability.invalidate)
        invalidator.on_agent(agents.invalidate)
        connections = Connections(deps, agents, invalidator)
        return cls(
            deps=deps,
            auth=Authenticator(deps),
            agents=agents,
            connections=connections,
            availability=availability,
            booking=Booking(deps, agents, availability, invalidator),
            google_oauth=GoogleOAuth(deps, connections),
            invalidator=invalidator,
        )

    async def close(self) -> None:
        await self.invalidator.stop()
        await self.deps.http.aclose()
        await self.deps.db.dispose()
