"""The demo tenant `make run` seeds: a Professional account, a built-in calendar, one agent
with full access, weekday hours 9:00-17:00 in America/New_York, and a few booked appointments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from service.deadline import Deadline
from service.model import (
    AgentSettings,
    Availability,
    Caller,
    EventDefaults,
    Plan,
    Scope,
    Window,
)
from service.scheduling.accounts import create_account, issue_key
from service.scheduling.app import CalendarApp
from service.scheduling.booking import BookCommand
from service.scheduling.validation import zone
from service.store import tables as t

DEMO_ACCOUNT_NAME = "Demo Dental (gleam-calendar demo)"
DEMO_AGENT = "demo-receptionist"
DEMO_ZONE = "America/New_York"


@dataclass(frozen=True, slots=True)
class DemoTenant:
    account_id: str
    api_key: str
    agent_id: str
    connection_id: str
    event_type_id: str
    time_zone: str


def _next_weekday(now: datetime, weekday: int) -> datetime:
    local = now.astimezone(zone(DEMO_ZONE))
    days = (weekday - local.weekday()) % 7 or 7
    return datetime.combine(local.date() + timedelta(days=days), time(0), tzinfo=zone(DEMO_ZONE))


async def seed_demo(app: CalendarApp) -> DemoTenant:
    """Creates the demo tenant, or issues a fresh key for it if it exists (keys are shown once)."""
    deps = app.deps
    async with deps.db.read() as session:
        existing = await session.scalar(
            select(t.Account.id).where(t.Account.name == DEMO_ACCOUNT_NAME)
        )
    if existing is not None:
        key = await issue_key(deps, existing)
        settings = await app.agents.get_settings(existing, DEMO_AGENT)
        types = await app.connections.list_event_types(
            existing, settings.connection_id, Deadline.after(5)
        )
        return DemoTenant(
            existing, key, DEMO_AGENT, settings.connection_id, types[0].event_type_id, DEMO_ZONE
        )
    account_id, key = await create_account(deps, DEMO_ACCOUNT_NAME, Plan.PROFESSIONAL)
    conn = await app.connections.connect_builtin(account_id, "Front desk", "Front desk")
    types = await app.connections.list_event_types(
        account_id, conn.connection_id, Deadline.after(5)
    )
    weekday = (Window(9 * 60, 17 * 60),)
    await app.agents.save_settings(
        account_id,
        AgentSettings(
            agent_id=DEMO_AGENT,
            enabled=True,
            connection_id=conn.connection_id,
            scopes=frozenset(Scope),
            business_name="Demo Dental",
            availability=Availability(
                time_zone=DEMO_ZONE,
                weekly_hours=(weekday,) * 5 + ((), ()),
                minimum_notice=timedelta(hours=1),
                max_advance_days=60,
            ),
            event_defaults=EventDefaults(
                duration=timedelta(minutes=30), title_template="Appointment with {caller_name}"
            ),
        ),
    )
    # A few existing appointments next Tuesday and Wednesday, so availability has holes.
    tuesday = _next_weekday(deps.clock(), 1)
    for day, hour, name in (
        (tuesday, 10, "Avery"),
        (tuesday, 14, "Blake"),
        (tuesday + timedelta(days=1), 9, "Casey"),
    ):
        start = (day + timedelta(hours=hour)).astimezone(UTC)
        await app.booking.book(
            account_id,
            BookCommand(
                DEMO_AGENT, types[0].event_type_id, start, Caller(name=name), "", "", "demo-seed"
            ),
            Deadline.after(10),
        )
    return DemoTenant(
        account_id, key, DEMO_AGENT, conn.connection_id, types[0].event_type_id, DEMO_ZONE
    )
