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
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Generic, TypeVar

T = TypeVar("T")

DAY = timedelta(days=1)


def utc_days(start: datetime, end: datetime) -> list[date]:
    """The UTC days [start, end) touches."""
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_around(*times: tuple[datetime, datetime]) -> list[date]:
    """The UTC days whose held availability these (start, end) times touch; a day either side
    covers buffers that spill over midnight."""
    return sorted({d for a, b in times for d in utc_days(a - DAY, b + DAY)})


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# Every stored entry gets a new serial, so a tuple of serials names exactly the data an answer
# was computed from (see Lookup.version).
_serials = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    items: tuple[T, ...]
    fetched_at: float  # time.monotonic()
    serial: int = field(default_factory=lambda: next(_serials))


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    items: tuple[T, ...]
    from_cache: bool
    age: timedelta
    stale: bool
    # The serials of the entries the items came from, day by day; None when some day was
    # fetched for this reader only (not stored), so the answer must not be reused.
    version: tuple[int, ...] | None = None


Fetch = Callable[[datetime, datetime], Awaitable[list[tuple[date, tuple[T, ...]]]]]


class AvailabilityCache(Generic[T]):
    def __init__(self, *, ttl: float, max_days: int) -> None:
        self.ttl = ttl
        self.max_days = max_days
        self._entries: OrderedDict[tuple[str, str, date], Entry[T]] = OrderedDict()
        self._inflight: dict[tuple[str, str, date], asyncio.Future[dict[date, tuple[T, ...]]]] = {}
        self._generation: dict[str, int] = {}
        self._epoch = 0  # bumped when everything is dropped
        self._refreshing: set[asyncio.Task[dict[date, tuple[T, ...]]]] = set()
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

        ``budget`` is the seconds the caller's deadline allows; when a needed refresh cannot
        finish in it, stale data is returned flagged, and with no data at all TimeoutError is
        raised.
        """
        days = utc_days(start, end)
        now = time.monotonic()
        keys = [(connection_id, source, d) for d in days]
        entries = [self._entries.get(k) for k in keys]
        missing = [k[2] for k, e in zip(keys, entries, strict=True) if e is None]
        expired = [
            k[2] for k, e in zip(keys, entries, strict=True) if e and now - e.fetched_at >= self.ttl
        ]
        if not missing:
            for k in keys:
                self._entries.move_to_end(k)
            if expired:
                self._refresh_in_background(connection_id, source, expired, fetch)
            return self._assemble(keys, now, {}, from_cache=True)
        deadline = now + max(budget, 0.0)
        fetched: dict[date, tuple[T, ...]] = {}
        # A day may be invalidated again while it is fetched (busy calendars do that); the
        # fetched answer still serves this reader, and the loop only fetches what is missing.
        for _ in range(3):
            task = asyncio.ensure_future(self._refresh(connection_id, source, missing, fetch))
            try:
                fetched.update(
                    await asyncio.wait_for(
                        asyncio.shield(task), timeout=max(deadline - time.monotonic(), 0.0)
                    )
                )
            except TimeoutError:
                if all(self._entries.get(k) or k[2] in fetched for k in keys):
                    return self._assemble(keys, time.monotonic(), fetched, from_cache=True)
                raise
            missing = [k[2] for k in keys if k not in self._entries and k[2] not in fetched]
            if not missing:
                return self._assemble(keys, time.monotonic(), fetched, from_cache=False)
        raise TimeoutError("availability kept changing while it was read")

    def _assemble(
        self,
        keys: list[tuple[str, str, date]],
        now: float,
        fetched: dict[date, tuple[T, ...]],
        *,
        from_cache: bool,
    ) -> Lookup[T]:
        items: list[T] = []
        oldest = now
        serials: list[int] | None = []
        for k in keys:
            entry = self._entries.get(k)
            if entry is not None:
                items.extend(entry.items)
                oldest = min(oldest, entry.fetched_at)
                if serials is not None:
                    serials.append(entry.serial)
            else:
                items.extend(fetched[k[2]])  # fetched just now for this reader
                serials = None
        age = max(0.0, now - oldest)
        version = tuple(serials) if serials is not None else None
        return Lookup(tuple(items), from_cache, timedelta(seconds=age), age >= self.ttl, version)

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
    ) -> dict[date, tuple[T, ...]]:
        """One fetch covering the days nobody is fetching yet; waits for the others.

        Returns what was fetched for ``days``; it is stored only if no invalidation of the
        connection happened meanwhile, so an older answer never overwrites a newer truth.
        """
        keys = [(connection_id, source, d) for d in days]
        waiting = {k[2]: self._inflight[k] for k in keys if k in self._inflight}
        mine = sorted(k[2] for k in keys if k not in self._inflight)
        result: dict[date, tuple[T, ...]] = {}
        if mine:
            future: asyncio.Future[dict[date, tuple[T, ...]]] = (
                asyncio.get_running_loop().create_future()
            )
            mine_keys = [(connection_id, source, d) for d in mine]
            for k in mine_keys:
                self._inflight[k] = future
            generation = (self._epoch, self._generation.get(connection_id, 0))
            try:
                self.provider_calls += 1
                got = dict(await fetch(day_start(mine[0]), day_start(mine[-1]) + DAY))
                data = {d: got.get(d, ()) for d in mine}
                if (self._epoch, self._generation.get(connection_id, 0)) == generation:
                    stamp = time.monotonic()
                    for d in mine:
                        self._store((connection_id, source, d), Entry(data[d], stamp))
                future.set_result(data)
                result.update(data)
            except BaseException as error:
                future.set_exception(error)
                future.exception()  # mark retrieved; the waiters below re-raise it
                raise
            finally:
                for k in mine_keys:
                    if self._inflight.get(k) is future:
                        del self._inflight[k]
        for day, other in waiting.items():
            result[day] = (await other).get(day, ())
        return result
