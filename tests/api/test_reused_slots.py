"""Slot results computed from held data are reused, but never past what made them right: the
held entries, the agent's rules and the clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from google.protobuf import field_mask_pb2
from sqlalchemy import event

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.config import Settings
from service.scheduling.app import CalendarApp
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Clock, Tenant, book_request, set_daily_cap

# The suite's now is Monday 12:00 in New York; office hours are 9 to 5, 30-minute slots.
MONDAY = {"year": 2026, "month": 11, "day": 23}
TUESDAY = {"year": 2026, "month": 11, "day": 24}


@pytest.fixture
def config(config: Settings) -> Settings:
    # Agent settings held, as in production: results are reused only for the same rules.
    return config.model_copy(update={"settings_cache_seconds": 60.0})


async def _starts(server: Server, tenant: Tenant, day: dict[str, int]) -> list[int]:
    reply = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=day), metadata=tenant.auth
    )
    assert reply.from_cache or not reply.slots or reply.data_age.seconds == 0
    return [s.start_time.seconds for s in reply.slots]


async def test_the_same_question_on_the_same_data_is_computed_once(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    first = await _starts(server, tenant, TUESDAY)
    kept = len(app.availability._computed)
    assert await _starts(server, tenant, TUESDAY) == first
    assert len(first) == 16
    assert kept == 1
    assert len(app.availability._computed) == 1


async def test_reused_slots_follow_the_clock_through_the_notice_period(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock
) -> None:
    first = await _starts(server, tenant, MONDAY)
    assert len(first) == 10  # 12:00 to 16:30
    clock.advance(timedelta(seconds=30))  # 12:00 is now in the past; the held data is not
    later = await _starts(server, tenant, MONDAY)
    assert later == first[1:]


async def test_a_booking_is_never_hidden_by_a_reused_answer(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    before = await _starts(server, tenant, TUESDAY)
    assert await _starts(server, tenant, TUESDAY) == before
    await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    after = await _starts(server, tenant, TUESDAY)
    assert after == before[1:]


async def test_new_rules_are_not_answered_from_reused_slots(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    assert len(await _starts(server, tenant, TUESDAY)) == 16
    await server.stub.UpdateAgentCalendarSettings(
        api.UpdateAgentCalendarSettingsRequest(
            settings=res.AgentCalendarSettings(
                agent_id=tenant.agent_id,
                availability=res.Availability(minimum_notice=timedelta(hours=24)),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["availability.minimum_notice"]),
        ),
        metadata=tenant.auth,
    )
    assert len(await _starts(server, tenant, TUESDAY)) == 10  # from 12:00, a day from now


async def test_a_daily_cap_is_counted_from_held_data_and_follows_bookings(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    await set_daily_cap(app, tenant, 2)
    assert len(await _starts(server, tenant, TUESDAY)) == 16
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engines = {app.deps.db.read_engine.sync_engine, app.deps.db.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        assert len(await _starts(server, tenant, TUESDAY)) == 16
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", seen)
    assert statements == []  # a capped agent's warm ListSlots reads no database

    await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    assert len(await _starts(server, tenant, TUESDAY)) == 15
    await server.stub.Book(
        book_request(tenant, TUESDAY_9AM + timedelta(hours=2)), metadata=tenant.auth
    )
    capped = await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY), metadata=tenant.auth
    )
    assert list(capped.slots) == []
    assert capped.no_availability_reason == api.NO_AVAILABILITY_REASON_DAILY_CAP_REACHED
