"""Telling every replica that held data went out of date.

Local handlers run at once; on PostgreSQL the change is also sent with NOTIFY on one channel
and every other replica's listener applies it, so a booking on one replica is visible to
ListSlots on all of them within a round trip. SQLite is single-process: local is everything.
A listener that loses its connection drops all held availability when it reconnects, because
notifications sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import date
from uuid import uuid4

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from service.scheduling.deps import Deps

CHANNEL = "gleam_calendar_invalidate"
# NOTIFY payloads are limited to 8000 bytes; past this many days, drop the whole connection.
MAX_DAYS_IN_MESSAGE = 100

log = logging.getLogger("gleam.calendar.invalidation")

ConnectionHandler = Callable[[str, list[date] | None], None]
AgentHandler = Callable[[str, str | None], None]


class Invalidator:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self.sender = uuid4().hex
        self._connection_handlers: list[ConnectionHandler] = []
        self._agent_handlers: list[AgentHandler] = []
        self._task: asyncio.Task[None] | None = None
        self.received = 0  # notifications applied from other replicas (tests, metrics)

    def on_connection(self, handler: ConnectionHandler) -> None:
        self._connection_handlers.append(handler)

    def on_agent(self, handler: AgentHandler) -> None:
        self._agent_handlers.append(handler)

    def apply(self, message: dict[str, object]) -> None:
        """Runs this replica's handlers for a change (other replicas hear it by NOTIFY)."""
        if message.get("k") == "c":
            days_raw = message.get("d")
            days = (
                [date.fromisoformat(str(d)) for d in days_raw]
                if isinstance(days_raw, list)
                else None
            )
            for handler in self._connection_handlers:
                handler(str(message["id"]), days)
        elif message.get("k") == "a":
            agent = message.get("agent")
            for agent_handler in self._agent_handlers:
                agent_handler(str(message["account"]), str(agent) if agent else None)

    async def notify_in(self, session: AsyncSession, message: dict[str, object]) -> None:
        """Sends the change to the other replicas inside the caller's transaction. PostgreSQL
        delivers a NOTIFY only when its transaction commits, so no replica hears of a change
        that then rolled back; the caller runs ``apply`` after the commit."""
        if self._deps.db.is_postgres:
            await session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": CHANNEL, "payload": json.dumps({**message, "s": self.sender})},
            )

    async def _publish(self, message: dict[str, object]) -> None:
        self.apply(message)
        if not self._deps.db.is_postgres:
            return
        async with self._deps.db.write() as session:
            await self.notify_in(session, message)

    @staticmethod
    def connection_message(connection_id: str, days: list[date] | None) -> dict[str, object]:
        if days is not None and len(days) > MAX_DAYS_IN_MESSAGE:
            days = None
        return {"k": "c", "id": connection_id, "d": [d.isoformat() for d in days] if days else None}

    async def connection_changed(self, connection_id: str, days: list[date] | None) -> None:
        await self._publish(self.connection_message(connection_id, days))

    async def agent_changed(self, account_id: str, agent_id: str | None) -> None:
        await self._publish({"k": "a", "account": account_id, "agent": agent_id})

    # Listening (PostgreSQL) ----------------------------------------------------------------

    async def start(self) -> None:
        if self._deps.db.is_postgres and self._task is None:
            ready = asyncio.Event()
            self._task = asyncio.create_task(self._listen(ready), name="invalidation-listener")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self, ready: asyncio.Event) -> None:
        conninfo = make_url(self._deps.db.url).set(drivername="postgresql")
        dsn = conninfo.render_as_string(hide_password=False)
        backoff = 0.5
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    if not first:
                        # Notifications sent while we were away are lost: forget everything.
                        for handler in self._connection_handlers:
                            handler("*", None)
                    first = False
                    backoff = 0.5
                    ready.set()
                    async for note in conn.notifies():
                        message = json.loads(note.payload)
                        if message.get("s") != self.sender:
                            self.received += 1
                            self.apply(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("invalidation listener lost its connection (%s)", type(error).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
