"""Availability held in memory, so ListSlots answers inside a voice turn.

What is cached: per connection and "source" (a busy-based calendar set, or one event type of a
slot-based provider), per UTC day, the provider's answer plus our own claims at fetch time.

- Fresh for ``ttl``; older entries are still served (flagged with their age) while one refresh
  runs in the background: stale-while-revalidate.
- Single flight: concurrent misses for the same days wait for one provider call.
- Bounded: at most ``max_days`` day entries, least recently used out.
- Our own Book, Reschedule and Cancel invalidate the days they touch at once, on every replica
  (``service.scheduling.invalidation`` carries it over PostgreSQL NOTIFY). A generation counter
  per connection makes a refresh that started before an invalidation discard its result, so an
  invalidation can never be undone by a slow in-flight fetch.
- Book never reads this cache: it always checks live.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")

DAY = timedelta(days=1)


def utc_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days [start, end) touches."""
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    items: tuple[T, ...]
    fetched_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    items: tuple[T, ...]
    from_cache: bool
    age: timedelta
    stale: bool


Fetch = Callable[[datetime, datetime], Awaitable[list[tuple[date, tuple[T, ...]]]]]


class AvailabilityCache(Generic[T]):
    def __init__(self, *, ttl: float, max_days: int) -> None:
        self.ttl = ttl
        self.max_days = max_days
        self._entries: OrderedDict[tuple[str, str, date], Entry[T]] = OrderedDict()
        self._inflight: dict[tuple[str, str, date], asyncio.Future[None]] = {}
        self._generation: dict[str, int] = {}
        self._epoch = 0  # bumped when everything is dropped
        self._refreshing: set[asyncio.Task[None]] = set()
        self.provider_calls = 0  # for the benchmark and tests: how many fetches ran

    def __len__(self) -> int:
        return len(self._entries)

    # Invalidation ------------------------------------------------------------------------

    def invalidate(self, connection_id: str, days: Iterable[date] | None = None) -> None:
        """Drops a connection's days (all when ``days`` is None) for every source; the
        connection id "*" drops everything."""
        if connection_id == "*":
            self._epoch += 1
            self._entries.clear()
            return
        self._generation[connection_id] = self._generation.get(connection_id, 0) + 1
        wanted = None if days is None else set(days)
        for key in [k for k in self._entries if k[0] == connection_id]:
            if wanted is None or key[2] in wanted:
                del self._entries[key]

    # Reading -----------------------------------------------------------------------------

    def _store(self, key: tuple[str, str, date], entry: Entry[T]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_days:
            self._entries.popitem(last=False)

    async def get(
        self,
        connection_id: str,
        source: str,
        start: datetime,
        end: datetime,
        fetch: Fetch[T],
        *,
        budget: float,
    ) -> Lookup[T]:
        """Items for [start, end): from memory when held, else one shared fetch.

        ``budget`` is the seconds the caller's deadline allows; when a needed refresh cannot finish
        in it, stale data is returned flagged, and with no data at all TimeoutError is raised.
        """
        days = utc_days(start, end)
        now = time.monotonic()
        keys = [(connection_id, source, d) for d in days]
        entries = [self._entries.get(k) for k in keys]
        missing = [k for k, e in zip(keys, entries, strict=True) if e is None]
        expired = [
            k for k, e in zip(keys, entries, strict=True) if e and now - e.fetched_at >= self.ttl
        ]
        if not missing:
            for k in keys:
                self._entries.move_to_end(k)
            if expired:
                self._refresh_in_background(connection_id, source, [k[2] for k in expired], fetch)
            return self._assemble(keys, now, from_cache=True)
        task = self._refresh(connection_id, source, [k[2] for k in missing], fetch)
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=max(budget, 0.0))
        except TimeoutError:
            if all(self._entries.get(k) for k in keys):
                return self._assemble(keys, time.monotonic(), from_cache=True)
            raise
        return self._assemble(keys, time.monotonic(), from_cache=False)

    def _assemble(
        self, keys: list[tuple[str, str, date]], now: float, *, from_cache: bool
    ) -> Lookup[T]:
        items: list[T] = []
        oldest = now
        for k in keys:
            entry = self._entries.get(k)
            if entry is None:
                raise TimeoutError("a day was evicted while it was being read")
            items.extend(entry.items)
            oldest = min(oldest, entry.fetched_at)
        age = max(0.0, now - oldest)
        return Lookup(tuple(items), from_cache, timedelta(seconds=age), age >= self.ttl)

    def _refresh_in_background(
        self, connection_id: str, source: str, days: list[date], fetch: Fetch[T]
    ) -> None:
        if all((connection_id, source, d) in self._inflight for d in days):
            return
        task = asyncio.ensure_future(self._refresh(connection_id, source, days, fetch))
        self._refreshing.add(task)  # keep a reference until done
        task.add_done_callback(self._refreshing.discard)
        # A failed background refresh leaves the stale entry in place; nothing to report.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _refresh(
        self, connection_id: str, source: str, days: list[date], fetch: Fetch[T]
    ) -> None:
        """One fetch covering the days nobody is fetching yet; waits for the others."""
        keys = [(connection_id, source, d) for d in days]
        waiting = [self._inflight[k] for k in keys if k in self._inflight]
        mine = sorted(k[2] for k in keys if k not in self._inflight)
        if mine:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            mine_keys = [(connection_id, source, d) for d in mine]
            for k in mine_keys:
                self._inflight[k] = future
            generation = (self._epoch, self._generation.get(connection_id, 0))
            try:
                self.provider_calls += 1
                fetched = await fetch(day_start(mine[0]), day_start(mine[-1]) + DAY)
                if (self._epoch, self._generation.get(connection_id, 0)) == generation:
                    by_day = dict(fetched)
                    stamp = time.monotonic()
                    for d in mine:
                        self._store((connection_id, source, d), Entry(by_day.get(d, ()), stamp))
                future.set_result(None)
            except BaseException as error:
                future.set_exception(error)
                future.exception()  # mark retrieved; the waiters below re-raise it
                raise
            finally:
                for k in mine_keys:
                    if self._inflight.get(k) is future:
                        del self._inflight[k]
        for other in waiting:
            await other
