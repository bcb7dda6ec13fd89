"""ListSlots through the cache: hits, our own bookings visible at once, other replicas too."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from gleam.calendar.v1 import calendar_service_pb2 as api
from service.config import Settings
from service.scheduling.app import CalendarApp
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Clock, Tenant, book_request

TUESDAY = {"year": 2026, "month": 11, "day": 24}


async def _slots(server: Server, tenant: Tenant) -> api.ListSlotsResponse:
    return await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY), metadata=tenant.auth
    )


async def test_second_list_is_a_hit_and_a_booking_shows_at_once(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    cold = await _slots(server, tenant)
    assert not cold.from_cache
    warm = await _slots(server, tenant)
    assert warm.from_cache
    assert not warm.stale
    calls = app.availability.busy_cache.provider_calls
    await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
    after = await _slots(server, tenant)
    assert len(after.slots) == len(warm.slots) - 1
    assert after.slots[0].start_time != warm.slots[0].start_time
    assert app.availability.busy_cache.provider_calls > calls  # refetched, not guessed


async def test_prepare_call_warms_the_next_days(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    warmed = await server.stub.PrepareCall(
        api.PrepareCallRequest(agent_id=tenant.agent_id, call_id="c1", days=7),
        metadata=tenant.auth,
    )
    assert warmed.warmed
    first = await _slots(server, tenant)
    assert first.from_cache


async def test_busy_blocks_invalidate_held_availability(
    server: Server, app: CalendarApp, tenant: Tenant, clock: Clock
) -> None:
    from gleam.calendar.v1 import resources_pb2 as res
    from service.api.convert import ts

    assert len((await _slots(server, tenant)).slots) == 16
    await server.stub.CreateBusyBlock(
        api.CreateBusyBlockRequest(
            busy_block=res.BusyBlock(
                connection_id=tenant.connection_id,
                start_time=ts(TUESDAY_9AM),
                end_time=ts(TUESDAY_9AM + timedelta(hours=1)),
            )
        ),
        metadata=tenant.auth,
    )
    assert len((await _slots(server, tenant)).slots) == 14


async def test_invalidation_reaches_another_replica(
    server: Server, app: CalendarApp, tenant: Tenant, config: Settings, clock: Clock
) -> None:
    if not app.deps.db.is_postgres:
        pytest.skip("replicas share PostgreSQL; SQLite is single-process (in-process invalidation)")
    other = CalendarApp.build(config)
    other.deps.clock = clock
    await other.invalidator.start()
    await app.invalidator.start()
    try:
        from service.deadline import Deadline
        from service.scheduling.availability import SlotQuery

        query = SlotQuery(tenant.agent_id, "", None, None, TUESDAY_9AM.date(), "", None, 0)
        first = await other.availability.list_slots(tenant.account_id, query, Deadline.after(5))
        held = await other.availability.list_slots(tenant.account_id, query, Deadline.after(5))
        assert held.from_cache
        await server.stub.Book(book_request(tenant, TUESDAY_9AM), metadata=tenant.auth)
        for _ in range(100):  # within a second
            if other.invalidator.received:
                break
            await asyncio.sleep(0.01)
        assert other.invalidator.received >= 1
        after = await other.availability.list_slots(tenant.account_id, query, Deadline.after(5))
        assert len(after.slots) == len(first.slots) - 1
    finally:
        await other.close()


async def test_a_slow_provider_with_nothing_held_is_provider_unavailable_in_time(
    server: Server, app: CalendarApp, tenant: Tenant
) -> None:
    import time

    import grpc

    from tests.helpers import assert_error
    from tests.scripted import script_provider

    script_provider(app, {"busy_delay": 1.0})
    started = time.perf_counter()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ListSlots(
            api.ListSlotsRequest(agent_id=tenant.agent_id, date=TUESDAY),
            metadata=tenant.auth,
            timeout=0.3,
        )
    assert_error(caught.value, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE")
    assert time.perf_counter() - started < 0.9  # answered inside the deadline, not after
    # The fetch went on and filled the cache: the next call is a hit.
    await asyncio.sleep(1.0)
    app.deps.provider_factory = None
    held = await _slots(server, tenant)
    assert held.from_cache
