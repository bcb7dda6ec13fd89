"""GetAppointment is in ``booking``; this module lists appointments for the dashboard."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, select

from service.model import ACTIVE_STATUSES, Appointment, AppointmentStatus
from service.scheduling import convert
from service.scheduling.agents import AgentContext
from service.scheduling.deps import Deps
from service.scheduling.paging import decode_token, encode_token, page_size
from service.store import tables as t


def active_on_calendar(
    ctx: AgentContext, start: datetime, end: datetime
) -> tuple[ColumnElement[bool], ...]:
    """Our active appointments on the agent's booking calendar starting in [start, end): the
    ones a daily cap counts."""
    assert ctx.connection is not None
    return (
        t.Appointment.account_id == ctx.account_id,
        t.Appointment.connection_id == ctx.connection.connection_id,
        t.Appointment.calendar_id == ctx.calendar_id,
        t.Appointment.status.in_([s.value for s in ACTIVE_STATUSES]),
        t.Appointment.start_at >= start,
        t.Appointment.start_at < end,
    )


async def list_appointments(
    deps: Deps,
    account_id: str,
    *,
    agent_id: str,
    start: datetime | None,
    end: datetime | None,
    statuses: tuple[AppointmentStatus, ...],
    size: int,
    token: str,
) -> tuple[list[Appointment], str]:
    limit = page_size(size, default=50, maximum=500)
    offset = int(decode_token(token).get("o", 0))
    query = select(t.Appointment).where(t.Appointment.account_id == account_id)
    if agent_id:
        query = query.where(t.Appointment.agent_id == agent_id)
    if start is not None:
        query = query.where(t.Appointment.start_at >= start)
    if end is not None:
        query = query.where(t.Appointment.start_at < end)
    if statuses:
        query = query.where(t.Appointment.status.in_([s.value for s in statuses]))
    query = query.order_by(t.Appointment.start_at, t.Appointment.id).offset(offset).limit(limit + 1)
    async with deps.db.read() as session:
        rows = (await session.scalars(query)).all()
    more = len(rows) > limit
    return [convert.appointment(r) for r in rows[:limit]], (
        encode_token({"o": offset + limit}) if more else ""
    )
