"""AvailabilityCache: freshness, stale-while-revalidate, single flight, bound, invalidation."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest

from service.scheduling.cache import AvailabilityCache, utc_days

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


class Provider:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[datetime, datetime]] = []
        self.delay = delay
        self.version = 1
        self.fail = False

    async def fetch(self, start: datetime, end: datetime) -> list[tuple[date, tuple[str, ...]]]:
        self.calls.append((start, end))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("provider down")
        return [(d, (f"{d}:v{self.version}",)) for d in utc_days(start, end)]


async def test_second_read_is_a_hit_and_reports_its_age() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=100)
    provider = Provider()
    first = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=2), provider.fetch, budget=1)
    assert not first.from_cache
    assert first.items == ("2026-11-23:v1", "2026-11-24:v1")
    second = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    assert second.from_cache
    assert not second.stale
    assert second.items == ("2026-11-23:v1",)
    assert len(provider.calls) == 1


async def test_only_missing_days_are_fetched() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=100)
    provider = Provider()
    await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=3), provider.fetch, budget=1)
    assert provider.calls[1] == (MONDAY + timedelta(days=1), MONDAY + timedelta(days=3))


async def test_fifty_concurrent_misses_make_one_provider_call() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=100)
    provider = Provider(delay=0.05)
    answers = await asyncio.gather(
        *(
            cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=5)
            for _ in range(50)
        )
    )
    assert len(provider.calls) == 1
    assert {a.items for a in answers} == {("2026-11-23:v1",)}


async def test_stale_data_is_served_while_one_refresh_runs() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=0.3, max_days=100)
    provider = Provider()
    await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    await asyncio.sleep(0.35)
    provider.version = 2
    provider.delay = 0.05
    stale = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    assert stale.from_cache
    assert stale.stale
    assert stale.items == ("2026-11-23:v1",)
    again = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    assert again.items == ("2026-11-23:v1",)  # refresh still running: no second call
    await asyncio.sleep(0.08)
    fresh = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    assert fresh.items == ("2026-11-23:v2",)
    assert not fresh.stale
    assert len(provider.calls) == 2


async def test_a_miss_that_cannot_finish_in_the_budget_times_out_but_fills_later() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=100)
    provider = Provider(delay=0.2)
    with pytest.raises(TimeoutError):
        await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=0.05)
    await asyncio.sleep(0.25)
    hit = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=0.05)
    assert hit.from_cache
    assert len(provider.calls) == 1


async def test_invalidation_during_a_fetch_discards_its_result() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=100)
    provider = Provider(delay=0.05)
    pending = asyncio.ensure_future(
        cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    )
    await asyncio.sleep(0.01)
    cache.invalidate("c", [MONDAY.date()])
    # The reader still gets the answer it waited for...
    assert (await pending).items == ("2026-11-23:v1",)
    # ...but it was not stored: it predates the invalidation.
    assert len(cache) == 0
    provider.delay = 0
    provider.version = 2
    after = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    assert after.items == ("2026-11-23:v2",)


async def test_invalidation_is_per_connection_and_day() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=100)
    provider = Provider()
    for connection in ("a", "b"):
        await cache.get(
            connection, "s", MONDAY, MONDAY + timedelta(days=2), provider.fetch, budget=1
        )
    cache.invalidate("a", [MONDAY.date()])
    assert len(cache) == 3
    cache.invalidate("*")
    assert len(cache) == 0


async def test_the_bound_evicts_least_recently_used_days() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=3)
    provider = Provider()
    await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=3), provider.fetch, budget=1)
    await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)  # touch
    await cache.get("d", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    assert len(cache) == 3
    again = await cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
    assert again.from_cache  # the touched day survived; Tuesday was evicted instead
    tuesday = await cache.get(
        "c", "s", MONDAY + timedelta(days=1), MONDAY + timedelta(days=2), provider.fetch, budget=1
    )
    assert not tuesday.from_cache


async def test_a_failed_fetch_reaches_every_waiter_and_caches_nothing() -> None:
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=10)
    provider = Provider(delay=0.02)
    provider.fail = True
    results = await asyncio.gather(
        *(
            cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=1)
            for _ in range(3)
        ),
        return_exceptions=True,
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(cache) == 0


async def test_readers_get_their_fetch_even_when_an_invalidation_discards_it() -> None:
    """Under a burst of bookings every fetch may be overtaken by an invalidation; readers must
    still be answered (with what was just fetched), not time out."""
    cache: AvailabilityCache[str] = AvailabilityCache(ttl=60, max_days=100)
    provider = Provider(delay=0.02)

    async def invalidate_constantly() -> None:
        for _ in range(20):
            cache.invalidate("c", [MONDAY.date()])
            await asyncio.sleep(0.005)

    readers = [
        cache.get("c", "s", MONDAY, MONDAY + timedelta(days=1), provider.fetch, budget=5)
        for _ in range(20)
    ]
    results = await asyncio.gather(invalidate_constantly(), *readers)
    assert all(r.items == ("2026-11-23:v1",) for r in results[1:])
