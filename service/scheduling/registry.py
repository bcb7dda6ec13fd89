"""Builds the provider adapter for a stored connection.

External adapters register a factory in ``ADAPTERS``. Each one is wrapped in ``Guarded``: when a
provider rejects stored credentials, the connection is marked NEEDS_REAUTH in the database (so
every replica and every later call sees it) and the caller gets CALENDAR_NOT_CONNECTED.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import update

from service.deadline import Deadline
from service.errors import CalendarNotConnected, FailedPrecondition
from service.model import ConnectionStatus, EventType, ProviderKind
from service.providers.base import (
    AdapterFactory,
    AvailabilityShape,
    CalendarPage,
    CalendarProvider,
    ConnectedAccount,
    ConnectionCheck,
    EventRef,
    EventRequest,
    ProviderAuthError,
    ProviderContext,
)
from service.providers.builtin import BuiltinProvider
from service.scheduling.deps import Deps
from service.slots import Interval
from service.store import tables as t

T = TypeVar("T")


def _adapters() -> dict[ProviderKind, AdapterFactory]:
    """Every external adapter this server ships, by provider."""
    adapters: dict[ProviderKind, AdapterFactory] = {}
    from service.providers.calcom import calcom_adapter

    adapters[ProviderKind.CALCOM] = calcom_adapter
    from service.providers.calendly import calendly_adapter

    adapters[ProviderKind.CALENDLY] = calendly_adapter
    from service.providers.google import google_provider

    adapters[ProviderKind.GOOGLE] = google_provider
    return adapters


ADAPTERS: dict[ProviderKind, AdapterFactory] = _adapters()


def not_configured(kind: ProviderKind) -> FailedPrecondition:
    return FailedPrecondition(
        f"no {kind.value} adapter is configured on this server",
        reason="PROVIDER_NOT_CONFIGURED",
        metadata={"provider": kind.value, "setting": "adapter"},
    )


def adapter(
    deps: Deps, kind: ProviderKind, connection_id: str, credentials: str, state: dict[str, Any]
) -> CalendarProvider:
    factory = ADAPTERS.get(kind)
    if factory is None:
        raise not_configured(kind)
    return factory(
        ProviderContext(deps.http, deps.config, credentials, state, connection_id, deps.clock)
    )


def provider_for(deps: Deps, row: t.Connection) -> CalendarProvider:
    if deps.provider_factory is not None:
        return deps.provider_factory(deps, row)
    return default_provider(deps, row)


def default_provider(deps: Deps, row: t.Connection) -> CalendarProvider:
    kind = ProviderKind(row.provider)
    if kind is ProviderKind.BUILTIN:
        return BuiltinProvider(deps.db, row.account_id, row.id)
    if row.credentials is None:
        raise CalendarNotConnected(
            f"the {kind.value} connection has no credentials",
            connection_id=row.id,
            provider=kind.value,
            status=row.status,
        )
    secret = deps.cipher.decrypt(row.credentials, context=row.id)
    inner = adapter(deps, kind, row.id, secret, dict(row.provider_state))
    return Guarded(inner, deps, row.account_id, row.id)


async def mark_needs_reauth(deps: Deps, connection_id: str, detail: str) -> None:
    async with deps.db.write() as session:
        await session.execute(
            update(t.Connection)
            .where(t.Connection.id == connection_id)
            .values(
                status=ConnectionStatus.NEEDS_REAUTH.value,
                status_detail=detail[:500],
                updated_at=deps.clock(),
            )
        )


class Guarded:
    """Delegates to an adapter; turns a rejected credential into NEEDS_REAUTH."""

    def __init__(self, inner: CalendarProvider, deps: Deps, account_id: str, connection_id: str):
        self._inner = inner
        self._deps = deps
        self._account_id = account_id
        self._connection_id = connection_id
        self.kind = inner.kind
        self.availability_shape: AvailabilityShape = inner.availability_shape
        # Called after a connection is marked, so per-process caches drop it at once.
        self.on_reauth: Callable[[str], None] | None = None

    async def _run(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except ProviderAuthError as error:
            await mark_needs_reauth(self._deps, self._connection_id, error.detail)
            if self.on_reauth is not None:
                self.on_reauth(self._account_id)
            raise CalendarNotConnected(
                f"{self.kind.value} refused the stored credentials ({error.detail})",
                connection_id=self._connection_id,
                provider=self.kind.value,
                status=ConnectionStatus.NEEDS_REAUTH.value,
            ) from error

    async def identify(self, deadline: Deadline) -> ConnectedAccount:
        return await self._run(self._inner.identify(deadline))

    async def check(self, deadline: Deadline) -> ConnectionCheck:
        return await self._run(self._inner.check(deadline))

    async def list_calendars(
        self, page_size: int, page_token: str, deadline: Deadline
    ) -> CalendarPage:
        return await self._run(self._inner.list_calendars(page_size, page_token, deadline))

    async def list_event_types(self, deadline: Deadline) -> tuple[EventType, ...]:
        return await self._run(self._inner.list_event_types(deadline))

    async def busy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[Interval, ...]:
        return await self._run(self._inner.busy(calendar_ids, start, end, deadline))

    async def open_starts(
        self, event_type: EventType, start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[datetime, ...]:
        return await self._run(self._inner.open_starts(event_type, start, end, deadline))

    async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef:
        return await self._run(self._inner.create_event(request, deadline))

    async def find_event(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        return await self._run(self._inner.find_event(appointment_id, deadline))

    async def move_event(
        self, ref: EventRef, request: EventRequest, deadline: Deadline
    ) -> EventRef:
        return await self._run(self._inner.move_event(ref, request, deadline))

    async def cancel_event(self, ref: EventRef, deadline: Deadline) -> None:
        await self._run(self._inner.cancel_event(ref, deadline))

    async def subscribe(
        self,
        callback_url: str,
        secret: str,
        deadline: Deadline,
        calendar_ids: tuple[str, ...] = (),
    ) -> Mapping[str, Any]:
        return await self._run(self._inner.subscribe(callback_url, secret, deadline, calendar_ids))

    async def unsubscribe(self, state: Mapping[str, Any], deadline: Deadline) -> None:
        await self._run(self._inner.unsubscribe(state, deadline))
