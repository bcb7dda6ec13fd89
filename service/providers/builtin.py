"""The built-in calendar: calendars, busy blocks and appointments kept in our own database.

It needs no credentials, so a business without an external calendar (or a developer with none)
gets a working service. Its "events" are our appointments: their time claims are its busy time,
so creating an event has nothing left to do once the claim is committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import literal, select, union_all

from service.deadline import Deadline
from service.model import EventType, ProviderKind
from service.providers.base import (
    AvailabilityShape,
    CalendarInfo,
    CalendarPage,
    ConnectedAccount,
    ConnectionCheck,
    EventRef,
    EventRequest,
)
from service.slots import Interval
from service.store import tables as t
from service.store.db import Database


def calendar_key(connection_id: str, calendar_id: str) -> str:
    """The claim namespace of one calendar (claims on different calendars never conflict)."""
    return f"{connection_id}:{calendar_id}"


class BuiltinProvider:
    kind = ProviderKind.BUILTIN
    availability_shape = AvailabilityShape.BUSY

    def __init__(self, db: Database, account_id: str, connection_id: str) -> None:
        self._db = db
        self._account_id = account_id
        self._connection_id = connection_id

    async def identify(self, deadline: Deadline) -> ConnectedAccount:
        return ConnectedAccount(external_account="")

    async def check(self, deadline: Deadline) -> ConnectionCheck:
        ok = await self._db.ping()
        return ConnectionCheck(ok, ok, ok, ok, "" if ok else "database unreachable")

    async def list_calendars(
        self, page_size: int, page_token: str, deadline: Deadline
    ) -> CalendarPage:
        async with self._db.read() as session:
            rows = (
                await session.scalars(
                    select(t.BuiltinCalendar)
                    .where(
                        t.BuiltinCalendar.account_id == self._account_id,
                        t.BuiltinCalendar.connection_id == self._connection_id,
                        t.BuiltinCalendar.id > page_token,
                    )
                    .order_by(t.BuiltinCalendar.id)
                    .limit(page_size + 1)
                )
            ).all()
        more = len(rows) > page_size
        rows = rows[:page_size]
        first = await self._default_calendar_id()
        calendars = tuple(
            CalendarInfo(r.id, r.name, primary=r.id == first, writable=True) for r in rows
        )
        return CalendarPage(calendars, rows[-1].id if more and rows else "")

    async def _default_calendar_id(self) -> str:
        async with self._db.read() as session:
            conn = await session.get(t.Connection, self._connection_id)
        return conn.default_calendar_id if conn else ""

    async def list_event_types(self, deadline: Deadline) -> tuple[EventType, ...]:
        # Built-in event types live in our event_types table; the use case reads them directly.
        return ()

    async def busy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[Interval, ...]:
        keys = [calendar_key(self._connection_id, c) for c in calendar_ids]
        blocks = select(t.BusyBlock.start_at, t.BusyBlock.end_at, literal("").label("appt")).where(
            t.BusyBlock.account_id == self._account_id,
            t.BusyBlock.connection_id == self._connection_id,
            t.BusyBlock.calendar_id.in_(calendar_ids),
            t.BusyBlock.start_at < end,
            t.BusyBlock.end_at > start,
        )
        claims = select(t.TimeClaim.start_at, t.TimeClaim.end_at, t.TimeClaim.appointment_id).where(
            t.TimeClaim.calendar_key.in_(keys),
            t.TimeClaim.start_at < end,
            t.TimeClaim.end_at > start,
        )
        # One round trip: blocks and claims together.
        async with self._db.read() as session:
            rows = (await session.execute(union_all(blocks, claims))).all()
        return tuple(Interval(r[0], r[1]) for r in rows)

    async def open_starts(
        self, event_type: EventType, start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[datetime, ...]:
        raise NotImplementedError("the built-in calendar is busy-based")

    async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef:
        # The committed claim already is the event on this calendar.
        return EventRef(f"builtin:{request.appointment_id}")

    async def find_event(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        async with self._db.read() as session:
            claim = await session.scalar(
                select(t.TimeClaim.id).where(t.TimeClaim.appointment_id == appointment_id).limit(1)
            )
        return EventRef(f"builtin:{appointment_id}") if claim else None

    async def move_event(
        self, ref: EventRef, request: EventRequest, deadline: Deadline
    ) -> EventRef:
        return ref

    async def cancel_event(self, ref: EventRef, deadline: Deadline) -> None:
        return None

    # Our own calendar changes only through us, and every such write invalidates directly.
    async def subscribe(
        self,
        callback_url: str,
        secret: str,
        deadline: Deadline,
        calendar_ids: tuple[str, ...] = (),
    ) -> Mapping[str, Any]:
        return {}

    async def unsubscribe(self, state: Mapping[str, Any], deadline: Deadline) -> None:
        return None
