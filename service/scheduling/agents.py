"""Agent calendar settings, and the per-agent context the hot path reads from memory.

``AgentContext`` bundles what ListSlots and Book need before touching availability: the
settings, the connection, its event types and the provider adapter. It is loaded once and cached
per process; any change made here invalidates it at once, and the TTL bounds how long a change
made by another replica takes to show.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from sqlalchemy import select

from service.errors import (
    CalendarDisabled,
    CalendarNotConnected,
    EventTypeNotAllowed,
    InvalidArgument,
    NotFound,
    ScopeDenied,
)
from service.model import AgentSettings, Connection, ConnectionStatus, EventType, Scope
from service.providers.base import CalendarProvider
from service.scheduling import convert
from service.scheduling.deps import Deps
from service.scheduling.invalidation import Invalidator
from service.scheduling.registry import Guarded, provider_for
from service.scheduling.rules import slot_rules
from service.scheduling.settings_codec import from_document, to_document
from service.scheduling.validation import validate_settings
from service.slots import SlotRules
from service.store import tables as t


@dataclass(frozen=True, slots=True)
class AgentContext:
    account_id: str
    settings: AgentSettings
    connection: Connection | None
    event_types: dict[str, EventType]
    provider: CalendarProvider | None
    # Engine rules per event type, built once per cached context: ListSlots is hot.
    _rules: dict[str, SlotRules] = field(default_factory=dict, compare=False, repr=False)

    def rules(self, event_type: EventType) -> SlotRules:
        found = self._rules.get(event_type.event_type_id)
        if found is None:
            s = self.settings
            found = slot_rules(s.availability, s.event_defaults, event_type)
            self._rules[event_type.event_type_id] = found
        return found

    @property
    def calendar_id(self) -> str:
        assert self.connection is not None
        return self.settings.calendar_id or self.connection.default_calendar_id

    def require(self, scope: Scope) -> tuple[Connection, CalendarProvider]:
        """Checks in AIP order: disabled, permission, then the connection's health."""
        s = self.settings
        if not s.enabled:
            raise CalendarDisabled(s.agent_id)
        if scope not in s.scopes:
            raise ScopeDenied(s.agent_id, scope.value)
        conn = self.connection
        if conn is None or self.provider is None:
            raise CalendarNotConnected(
                f"agent {s.agent_id!r} has no calendar connection", connection_id=s.connection_id
            )
        if conn.status is not ConnectionStatus.CONNECTED:
            raise CalendarNotConnected(
                f"the {conn.provider.value} connection is {conn.status.value}",
                connection_id=conn.connection_id,
                provider=conn.provider.value,
                status=conn.status.value,
            )
        return conn, self.provider

    def event_type(self, event_type_id: str) -> EventType:
        s = self.settings
        if not event_type_id:
            # The first allowed type, or the connection's oldest when all are allowed.
            candidates = s.allowed_event_type_ids or tuple(self.event_types)
            event_type_id = next((e for e in candidates if e in self.event_types), "")
            if not event_type_id:
                raise InvalidArgument("event_type_id", "the agent has no event type to book")
        if s.allowed_event_type_ids and event_type_id not in s.allowed_event_type_ids:
            raise EventTypeNotAllowed(s.agent_id, event_type_id)
        found = self.event_types.get(event_type_id)
        if found is None:
            raise NotFound("event_type", event_type_id)
        return found


def default_settings(agent_id: str) -> AgentSettings:
    return AgentSettings(agent_id=agent_id)


class AgentDirectory:
    def __init__(self, deps: Deps, invalidator: Invalidator) -> None:
        self._deps = deps
        self._invalidator = invalidator
        self._ttl = deps.config.settings_cache_seconds
        self._cache: dict[tuple[str, str], tuple[AgentContext, float]] = {}

    def invalidate(self, account_id: str, agent_id: str | None = None) -> None:
        if agent_id is not None:
            self._cache.pop((account_id, agent_id), None)
            return
        for key in [k for k in self._cache if k[0] == account_id]:
            del self._cache[key]

    async def context(self, account_id: str, agent_id: str) -> AgentContext:
        if not agent_id:
            raise InvalidArgument("agent_id", "is required")
        key = (account_id, agent_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        ctx = await self._load(account_id, agent_id)
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (ctx, now + self._ttl)
        return ctx

    async def _load(self, account_id: str, agent_id: str) -> AgentContext:
        async with self._deps.db.read() as session:
            row = await session.get(t.AgentSettings, (account_id, agent_id))
            settings = (
                from_document(agent_id, row.data) if row is not None else default_settings(agent_id)
            )
            conn_row = None
            types: dict[str, EventType] = {}
            if settings.connection_id:
                conn_row = await session.scalar(
                    select(t.Connection).where(
                        t.Connection.id == settings.connection_id,
                        t.Connection.account_id == account_id,
                    )
                )
                if conn_row is not None:
                    for et in await session.scalars(
                        select(t.EventType)
                        .where(
                            t.EventType.connection_id == conn_row.id,
                            t.EventType.account_id == account_id,
                        )
                        .order_by(t.EventType.created_at, t.EventType.id)
                    ):
                        types[et.id] = convert.event_type(et)
        if row is not None:
            settings = _with_time(settings, row)
        provider = None
        connection = None
        if conn_row is not None:
            connection = convert.connection(conn_row)
            if connection.status is ConnectionStatus.CONNECTED:
                provider = provider_for(self._deps, conn_row)
                if isinstance(provider, Guarded):
                    provider.on_reauth = self.invalidate
        return AgentContext(account_id, settings, connection, types, provider)

    async def get_settings(self, account_id: str, agent_id: str) -> AgentSettings:
        return (await self.context(account_id, agent_id)).settings

    async def save_settings(self, account_id: str, settings: AgentSettings) -> AgentSettings:
        validate_settings(settings)
        async with self._deps.db.write() as session:
            if settings.connection_id:
                conn = await session.scalar(
                    select(t.Connection).where(
                        t.Connection.id == settings.connection_id,
                        t.Connection.account_id == account_id,
                    )
                )
                if conn is None:
                    raise InvalidArgument("settings.connection_id", "no such connection")
                known = set(
                    await session.scalars(
                        select(t.EventType.id).where(t.EventType.connection_id == conn.id)
                    )
                )
                for i, et in enumerate(settings.allowed_event_type_ids):
                    if et not in known:
                        raise InvalidArgument(
                            f"settings.allowed_event_type_ids[{i}]",
                            f"no event type {et!r} on the connection",
                        )
            row = await session.get(t.AgentSettings, (account_id, settings.agent_id))
            now = self._deps.clock()
            if row is None:
                row = t.AgentSettings(
                    account_id=account_id,
                    agent_id=settings.agent_id,
                    data=to_document(settings),
                    updated_at=now,
                )
                session.add(row)
            else:
                row.data = to_document(settings)
                row.version += 1
                row.updated_at = now
        await self._invalidator.agent_changed(account_id, settings.agent_id)
        return _with_time(settings, row)


def _with_time(settings: AgentSettings, row: t.AgentSettings) -> AgentSettings:
    return replace(settings, updated_at=row.updated_at)
