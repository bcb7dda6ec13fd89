"""Connections, their calendars and event types, and busy blocks on built-in calendars.

External connections also get a push subscription at the provider (webhook or watch channel)
so outside changes drop held availability; see ``subscribe_pushes``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.deadline import Deadline
from service.errors import (
    CalendarError,
    CalendarNotConnected,
    CredentialsRejected,
    InvalidArgument,
    InvalidTimeRange,
    NotFound,
    OperationNotSupported,
)
from service.model import BusyBlock, Connection, ConnectionStatus, EventType, ProviderKind
from service.providers.base import (
    CalendarPage,
    CalendarProvider,
    ConnectionCheck,
    ProviderAuthError,
)
from service.scheduling import convert
from service.scheduling.agents import AgentDirectory
from service.scheduling.cache import utc_days
from service.scheduling.deps import Deps
from service.scheduling.idempotency import Idempotency
from service.scheduling.invalidation import Invalidator
from service.scheduling.owned import owned
from service.scheduling.paging import decode_token, encode_token, page_size
from service.scheduling.registry import adapter, provider_for
from service.scheduling.settings_codec import from_document
from service.store import tables as t
from service.store.crypto import DecryptionError


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: ConnectionCheck
    connection: Connection
    latency: timedelta


log = logging.getLogger("gleam.calendar.connections")

# provider_state["push"]: whether the provider was told to push changes. "off" is retried by
# the maintenance loop; meanwhile the cache TTL alone bounds how stale held availability gets.
PUSH_ON, PUSH_OFF = "on", "off"
# The keys subscribe() may add, dropped when a subscription is replaced or stopped.
PUSH_STATE_KEYS = (
    "calcom_webhook_id",
    "calendly_webhook_uri",
    "google_channels",
    "google_watched",
    "google_channel_expires_ms",
    # One channel on the primary calendar only, as stored before channels were per calendar.
    "google_channel_id",
    "google_resource_id",
)
# Housekeeping calls to the provider that no request waits for.
PUSH_CALL_SECONDS = 10.0


def webhook_secret_context(connection_id: str) -> str:
    """Associated data for a connection's webhook secret (not interchangeable with its key)."""
    return f"{connection_id}:webhook"


def push_callback_url(config: Settings, kind: ProviderKind, connection_id: str) -> str:
    """Where the provider sends pushes. Google channels are found by channel id instead (the
    notification names it), so Google has one URL for every connection."""
    base = config.public_base_url.rstrip("/")
    if kind is ProviderKind.GOOGLE:
        return f"{base}/webhooks/google"
    return f"{base}/webhooks/{kind.value.lower()}/{connection_id}"


async def watched_calendars(
    session: AsyncSession, rows: Sequence[t.Connection]
) -> dict[str, tuple[str, ...]]:
    """Per connection, the calendars whose changes matter to its agents: each one's booking
    calendar (the connection's default when unset) and blocking calendars, sorted. With no
    agent on the connection yet, its default calendar (the one agents get unless told). One
    query for all the rows' accounts."""
    by_id = {row.id: row for row in rows}
    ids: dict[str, set[str]] = {row.id: set() for row in rows}
    accounts = {row.account_id for row in rows}
    if accounts:
        for settings_row in await session.scalars(
            select(t.AgentSettings).where(t.AgentSettings.account_id.in_(accounts))
        ):
            settings = from_document(settings_row.agent_id, settings_row.data)
            row = by_id.get(settings.connection_id)
            if row is not None and row.account_id == settings_row.account_id:
                ids[row.id].add(settings.calendar_id or row.default_calendar_id)
                ids[row.id].update(settings.blocking_calendar_ids)
    out = {}
    for row_id, found in ids.items():
        found = found or {by_id[row_id].default_calendar_id}
        out[row_id] = tuple(sorted(i for i in found if i))
    return out


async def subscribe_pushes(
    deps: Deps,
    provider: CalendarProvider,
    kind: ProviderKind,
    connection_id: str,
    secret: str,
    deadline: Deadline,
    calendar_ids: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Subscribes; returns the state to merge (``push`` on with the subscription's facts, or
    ``push`` off). Never raises for a provider failure: pushes are an optimisation."""
    url = push_callback_url(deps.config, kind, connection_id)
    if kind is ProviderKind.GOOGLE and not url.startswith("https://"):
        # Google accepts only HTTPS addresses for channels: asking would fail and spend quota
        # on every maintenance round. The cache TTL alone bounds staleness meanwhile.
        log.debug(
            "Google pushes need an https CALENDAR_PUBLIC_BASE_URL; %s not watched", connection_id
        )
        return {"push": PUSH_OFF}
    try:
        state = await provider.subscribe(url, secret, deadline, calendar_ids)
    except (CalendarError, ProviderAuthError) as error:
        # The reason only: never the secret, the URL's token or the provider's answer body.
        reason = getattr(error, "reason", type(error).__name__)
        log.warning("push subscription for %s (%s) failed: %s", connection_id, kind.value, reason)
        return {"push": PUSH_OFF}
    return {**state, "push": PUSH_ON}


def without_push(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in PUSH_STATE_KEYS}


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:100] or "event"


class Connections:
    def __init__(self, deps: Deps, agents: AgentDirectory, invalidator: Invalidator) -> None:
        self._deps = deps
        self._agents = agents
        self._invalidator = invalidator
        self._idempotency = Idempotency(deps)

    async def _row(
        self, session: AsyncSession, account_id: str, connection_id: str
    ) -> t.Connection:
        return await owned(
            session,
            t.Connection,
            connection_id,
            account_id,
            resource_type="connection",
            field="connection_id",
        )

    async def connect_builtin(
        self,
        account_id: str,
        display_name: str,
        calendar_name: str,
        *,
        request_id: str = "",
        deadline: Deadline | None = None,
    ) -> Connection:
        return await self._idempotency.once(
            account_id,
            request_id,
            "Connect",
            {"builtin": [display_name, calendar_name]},
            deadline or Deadline.after(None),
            lambda: self._connect_builtin(account_id, display_name, calendar_name),
            lambda conn: conn.connection_id,
            lambda connection_id: self.get(account_id, connection_id),
        )

    async def _connect_builtin(
        self, account_id: str, display_name: str, calendar_name: str
    ) -> Connection:
        connection_id, calendar_id = uuid4().hex, uuid4().hex
        async with self._deps.db.write() as session:
            row = t.Connection(
                id=connection_id,
                account_id=account_id,
                provider=ProviderKind.BUILTIN.value,
                status=ConnectionStatus.CONNECTED.value,
                display_name=display_name or "Built-in calendar",
                external_account="",
                default_calendar_id=calendar_id,
                granted_scopes=[],
            )
            session.add(row)
            await session.flush()
            session.add(
                t.BuiltinCalendar(
                    id=calendar_id,
                    account_id=account_id,
                    connection_id=connection_id,
                    name=calendar_name or display_name or "Calendar",
                )
            )
            # Every calendar starts with one bookable type so an agent can book at once.
            session.add(
                t.EventType(
                    id=uuid4().hex,
                    account_id=account_id,
                    connection_id=connection_id,
                    title="Appointment",
                    slug="appointment",
                    duration_s=30 * 60,
                )
            )
        return convert.connection(row)

    async def connect_external(
        self,
        account_id: str,
        kind: ProviderKind,
        secret: str,
        display_name: str,
        *,
        request_id: str = "",
        deadline: Deadline | None = None,
    ) -> Connection:
        """Checks the credentials live, then stores them encrypted with the provider's facts."""
        field = {
            ProviderKind.CALCOM: "calcom.api_key",
            ProviderKind.CALENDLY: "calendly.access_token",
        }
        if not secret.strip():
            raise InvalidArgument(field.get(kind, "credentials"), "is required")
        budget = deadline or Deadline.after(None)
        return await self._idempotency.once(
            account_id,
            request_id,
            "Connect",
            # A digest, not the secret: idempotency records are not encrypted.
            {"provider": kind.value, "secret": hashlib.sha256(secret.encode()).hexdigest()},
            budget,
            lambda: self._connect_external(account_id, kind, secret.strip(), display_name, budget),
            lambda conn: conn.connection_id,
            lambda connection_id: self.get(account_id, connection_id),
        )

    async def _connect_external(
        self,
        account_id: str,
        kind: ProviderKind,
        secret: str,
        display_name: str,
        deadline: Deadline,
    ) -> Connection:
        connection_id = uuid4().hex
        provider = adapter(self._deps, kind, connection_id, secret, {})
        try:
            account = await provider.identify(deadline)
            types = await provider.list_event_types(deadline)
        except ProviderAuthError as error:
            raise CredentialsRejected(kind.value, error.detail) from error
        webhook_secret = secrets.token_urlsafe(32)
        async with self._deps.db.write() as session:
            row = t.Connection(
                id=connection_id,
                account_id=account_id,
                provider=kind.value,
                status=ConnectionStatus.CONNECTED.value,
                display_name=display_name or kind.value.title(),
                external_account=account.external_account,
                default_calendar_id=account.default_calendar_id,
                granted_scopes=list(account.granted_scopes),
                credentials=self._deps.cipher.encrypt(secret, context=connection_id),
                provider_state={
                    **account.provider_state,
                    # Signs this connection's webhooks; sealed like any credential.
                    "webhook_secret": self._deps.cipher.encrypt(
                        webhook_secret, context=webhook_secret_context(connection_id)
                    ),
                    "push": PUSH_OFF,
                },
                created_at=self._deps.clock(),
                updated_at=self._deps.clock(),
            )
            session.add(row)
            await session.flush()
            await self._store_event_types(session, row, types)
        # Subscribed after the row exists, so a push that arrives at once finds its connection.
        # A failure leaves push "off" for the maintenance loop; Connect still succeeds.
        push = await subscribe_pushes(
            self._deps,
            provider,
            kind,
            connection_id,
            webhook_secret,
            deadline,
            (row.default_calendar_id,) if row.default_calendar_id else (),
        )
        async with self._deps.db.write() as session:
            stored = await self._row(session, account_id, connection_id)
            # A new dict: the JSON column does not track in-place changes.
            stored.provider_state = {**stored.provider_state, **push}
            row = stored
        return convert.connection(row)

    async def _store_event_types(
        self, session: AsyncSession, conn: t.Connection, types: tuple[EventType, ...]
    ) -> None:
        """Mirrors the provider's event types into ours, keyed by the provider's reference, so
        agent settings can name them and bookings know their durations."""
        existing = {
            r.provider_ref: r
            for r in await session.scalars(
                select(t.EventType).where(t.EventType.connection_id == conn.id)
            )
        }
        seen = set()
        for et in types:
            seen.add(et.provider_ref)
            row = existing.get(et.provider_ref)
            if row is None:
                session.add(
                    t.EventType(
                        id=uuid4().hex,
                        account_id=conn.account_id,
                        connection_id=conn.id,
                        title=et.title[:200],
                        slug=et.slug[:200],
                        duration_s=int(et.duration.total_seconds()),
                        provider_ref=et.provider_ref,
                        active=et.active,
                    )
                )
            else:
                row.title, row.slug = et.title[:200], et.slug[:200]
                row.duration_s = int(et.duration.total_seconds())
                row.active = et.active
        for ref, row in existing.items():
            if ref not in seen:
                row.active = False  # gone at the provider; kept for old appointments

    async def list_connections(
        self, account_id: str, size: int, token: str
    ) -> tuple[list[Connection], str]:
        limit = page_size(size, default=50, maximum=200)
        offset = int(decode_token(token).get("o", 0))
        async with self._deps.db.read() as session:
            rows = (
                await session.scalars(
                    select(t.Connection)
                    .where(t.Connection.account_id == account_id)
                    .order_by(t.Connection.created_at.desc(), t.Connection.id)
                    .offset(offset)
                    .limit(limit + 1)
                )
            ).all()
        more = len(rows) > limit
        return [convert.connection(r) for r in rows[:limit]], (
            encode_token({"o": offset + limit}) if more else ""
        )

    async def get(self, account_id: str, connection_id: str) -> Connection:
        async with self._deps.db.read() as session:
            return convert.connection(await self._row(session, account_id, connection_id))

    async def disconnect(self, account_id: str, connection_id: str) -> Connection:
        async with self._deps.db.write() as session:
            row = await self._row(session, account_id, connection_id)
            credentials, state = row.credentials, dict(row.provider_state)
            row.status = ConnectionStatus.REVOKED.value
            row.credentials = None
            row.status_detail = "disconnected by the business"
            row.updated_at = self._deps.clock()
            row.provider_state = {**without_push(state), "push": PUSH_OFF}
        await self._invalidator.agent_changed(account_id, None)
        # After the row is REVOKED (the receiver refuses its pushes from now on).
        await self._unsubscribe(row, credentials, state)
        return convert.connection(row)

    async def _unsubscribe(
        self, row: t.Connection, credentials: str | None, state: Mapping[str, Any]
    ) -> None:
        """Best effort: a subscription left behind only sends pushes we refuse (401)."""
        if credentials is None or state.get("push") != PUSH_ON:
            return
        kind = ProviderKind(row.provider)
        try:
            secret = self._deps.cipher.decrypt(credentials, context=row.id)
            # The bare adapter, not the guarded one: a refused credential must not turn the
            # REVOKED connection into NEEDS_REAUTH.
            provider = adapter(self._deps, kind, row.id, secret, dict(state))
            await provider.unsubscribe(state, Deadline.after(PUSH_CALL_SECONDS))
        except (CalendarError, ProviderAuthError, DecryptionError) as error:
            reason = getattr(error, "reason", type(error).__name__)
            log.warning("push unsubscribe for %s (%s) failed: %s", row.id, kind.value, reason)

    async def test(self, account_id: str, connection_id: str, deadline: Deadline) -> CheckResult:
        async with self._deps.db.read() as session:
            row = await self._row(session, account_id, connection_id)
        if row.status == ConnectionStatus.REVOKED.value:
            return CheckResult(
                ConnectionCheck(False, False, False, False, "the connection was disconnected"),
                convert.connection(row),
                timedelta(0),
            )
        started = time.perf_counter()
        try:
            check = await provider_for(self._deps, row).check(deadline)
        except CalendarNotConnected as error:
            # "Test the integration" answers, it does not fail: the status says what to do.
            await self._invalidator.agent_changed(account_id, None)
            check = ConnectionCheck(False, False, False, False, error.message)
        latency = timedelta(seconds=time.perf_counter() - started)
        return CheckResult(check, await self.get(account_id, connection_id), latency)

    async def list_calendars(
        self, account_id: str, connection_id: str, size: int, token: str, deadline: Deadline
    ) -> CalendarPage:
        async with self._deps.db.read() as session:
            row = await self._row(session, account_id, connection_id)
        self._require_connected(row)
        return await provider_for(self._deps, row).list_calendars(
            page_size(size, default=100, maximum=250), token, deadline
        )

    async def list_event_types(
        self, account_id: str, connection_id: str, deadline: Deadline
    ) -> list[EventType]:
        async with self._deps.db.read() as session:
            row = await self._row(session, account_id, connection_id)
        if row.provider in (ProviderKind.CALCOM.value, ProviderKind.CALENDLY.value):
            # The provider owns these: refresh our mirror from it.
            self._require_connected(row)
            types = await provider_for(self._deps, row).list_event_types(deadline)
            async with self._deps.db.write() as session:
                fresh = await self._row(session, account_id, connection_id)
                await self._store_event_types(session, fresh, types)
            await self._invalidator.agent_changed(account_id, None)
        async with self._deps.db.read() as session:
            ours = (
                await session.scalars(
                    select(t.EventType)
                    .where(
                        t.EventType.connection_id == row.id,
                        t.EventType.account_id == account_id,
                        t.EventType.active.is_(True),
                    )
                    .order_by(t.EventType.created_at, t.EventType.id)
                )
            ).all()
        return [convert.event_type(r) for r in ours]

    async def create_event_type(
        self,
        account_id: str,
        connection_id: str,
        event_type: EventType,
        *,
        request_id: str = "",
        deadline: Deadline | None = None,
    ) -> EventType:
        return await self._idempotency.once(
            account_id,
            request_id,
            "CreateEventType",
            {"connection": connection_id, "event_type": repr(event_type)},
            deadline or Deadline.after(None),
            lambda: self._create_event_type(account_id, connection_id, event_type),
            lambda created: created.event_type_id,
            lambda event_type_id: self._event_type(account_id, event_type_id),
        )

    async def _event_type(self, account_id: str, event_type_id: str) -> EventType:
        async with self._deps.db.read() as session:
            row = await owned(
                session,
                t.EventType,
                event_type_id,
                account_id,
                resource_type="event_type",
                field="event_type_id",
            )
        return convert.event_type(row)

    async def _create_event_type(
        self, account_id: str, connection_id: str, event_type: EventType
    ) -> EventType:
        minutes = event_type.duration.total_seconds() / 60
        if not 5 <= minutes <= 480:
            raise InvalidArgument("event_type.duration", "must be between 5 and 480 minutes")
        if not event_type.title.strip():
            raise InvalidArgument("event_type.title", "is required")
        for name, value in (
            ("event_type.buffer_before", event_type.buffer_before),
            ("event_type.buffer_after", event_type.buffer_after),
        ):
            if not timedelta(0) <= value <= timedelta(hours=24):
                raise InvalidArgument(name, "must be between 0 and 24 hours")
        async with self._deps.db.write() as session:
            conn = await self._row(session, account_id, connection_id)
            if conn.provider not in (ProviderKind.BUILTIN.value, ProviderKind.GOOGLE.value):
                raise OperationNotSupported(conn.provider, "CreateEventType")
            row = t.EventType(
                id=uuid4().hex,
                account_id=account_id,
                connection_id=conn.id,
                title=event_type.title.strip(),
                slug=event_type.slug or _slug(event_type.title),
                duration_s=int(event_type.duration.total_seconds()),
                buffer_before_s=int(event_type.buffer_before.total_seconds()),
                buffer_after_s=int(event_type.buffer_after.total_seconds()),
            )
            session.add(row)
        await self._invalidator.agent_changed(account_id, None)
        return convert.event_type(row)

    @staticmethod
    def _require_connected(row: t.Connection) -> None:
        if row.status != ConnectionStatus.CONNECTED.value:
            raise CalendarNotConnected(
                f"the {row.provider} connection is {row.status}",
                connection_id=row.id,
                provider=row.provider,
                status=row.status,
            )

    # Busy blocks (built-in calendars only) ---------------------------------------------------

    async def _builtin_calendar(
        self, session: AsyncSession, account_id: str, connection_id: str, calendar_id: str
    ) -> tuple[t.Connection, str]:
        conn = await self._row(session, account_id, connection_id)
        if conn.provider != ProviderKind.BUILTIN.value:
            raise OperationNotSupported(conn.provider, "busy blocks")
        calendar_id = calendar_id or conn.default_calendar_id
        cal = await session.scalar(
            select(t.BuiltinCalendar.id).where(
                t.BuiltinCalendar.id == calendar_id, t.BuiltinCalendar.connection_id == conn.id
            )
        )
        if cal is None:
            raise NotFound("calendar", calendar_id)
        return conn, calendar_id

    async def create_busy_block(
        self,
        account_id: str,
        block: BusyBlock,
        *,
        request_id: str = "",
        deadline: Deadline | None = None,
    ) -> BusyBlock:
        return await self._idempotency.once(
            account_id,
            request_id,
            "CreateBusyBlock",
            {"block": repr(block)},
            deadline or Deadline.after(None),
            lambda: self._create_busy_block(account_id, block),
            lambda created: created.busy_block_id,
            lambda busy_block_id: self._busy_block(account_id, busy_block_id),
        )

    async def _busy_block(self, account_id: str, busy_block_id: str) -> BusyBlock:
        async with self._deps.db.read() as session:
            row = await owned(
                session,
                t.BusyBlock,
                busy_block_id,
                account_id,
                resource_type="busy_block",
                field="busy_block_id",
            )
        return convert.busy_block(row)

    async def _create_busy_block(self, account_id: str, block: BusyBlock) -> BusyBlock:
        if block.end <= block.start:
            raise InvalidTimeRange("busy_block.end_time", "must be after start_time")
        if block.end - block.start > timedelta(days=366):
            raise InvalidTimeRange("busy_block.end_time", "a block may span at most 366 days")
        async with self._deps.db.write() as session:
            conn, calendar_id = await self._builtin_calendar(
                session, account_id, block.connection_id, block.calendar_id
            )
            row = t.BusyBlock(
                id=uuid4().hex,
                account_id=account_id,
                connection_id=conn.id,
                calendar_id=calendar_id,
                start_at=block.start,
                end_at=block.end,
                label=block.label[:200],
            )
            session.add(row)
        await self._invalidator.connection_changed(conn.id, utc_days(block.start, block.end))
        return convert.busy_block(row)

    async def list_busy_blocks(
        self,
        account_id: str,
        connection_id: str,
        calendar_id: str,
        start: datetime,
        end: datetime,
        size: int,
        token: str,
    ) -> tuple[list[BusyBlock], str]:
        limit = page_size(size, default=100, maximum=500)
        offset = int(decode_token(token).get("o", 0))
        async with self._deps.db.read() as session:
            _, calendar_id = await self._builtin_calendar(
                session, account_id, connection_id, calendar_id
            )
            rows = (
                await session.scalars(
                    select(t.BusyBlock)
                    .where(
                        t.BusyBlock.account_id == account_id,
                        t.BusyBlock.calendar_id == calendar_id,
                        t.BusyBlock.start_at < end,
                        t.BusyBlock.end_at > start,
                    )
                    .order_by(t.BusyBlock.start_at, t.BusyBlock.id)
                    .offset(offset)
                    .limit(limit + 1)
                )
            ).all()
        more = len(rows) > limit
        return [convert.busy_block(r) for r in rows[:limit]], (
            encode_token({"o": offset + limit}) if more else ""
        )

    async def delete_busy_block(self, account_id: str, busy_block_id: str) -> None:
        if not busy_block_id:
            raise InvalidArgument("busy_block_id", "is required")
        async with self._deps.db.write() as session:
            gone = await session.scalar(
                select(t.BusyBlock).where(
                    t.BusyBlock.id == busy_block_id, t.BusyBlock.account_id == account_id
                )
            )
            if gone is None:
                return
            await session.delete(gone)
        await self._invalidator.connection_changed(
            gone.connection_id, utc_days(gone.start_at, gone.end_at)
        )
