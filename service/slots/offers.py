"""Choosing which few slots a phone agent reads out.

Rules enforced here:

* `nearest` returns the k slots whose starts are closest to the requested instant, before or
  after it; equal distances prefer the earlier slot.
* `spread` returns k slots spread evenly (by position) over one local day's slots, always
  including the day's first slot (and its last when k >= 2).
* `first_available` returns the next k bookable slots starting at or after `after`, with
  exactly the rules of `compute_slots`, looking ahead in growing chunks (1, 2, 4, ... days) so
  that an early answer costs an early stop. It looks no further than the advance window, or
  366 days past the earliest bookable instant when there is no advance limit.
* Every result is deduplicated and sorted by start; k must be a non-negative int, requested and
  after must be timezone-aware (``ValueError`` otherwise).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from operator import attrgetter
from types import MappingProxyType

from .busy import BusyIndex
from .engine import SlotPlan, candidate_starts, select_starts, to_slots
from .results import Slot
from .rules import Interval, SlotRules
from .zones import ceil_seconds, get_zone, micros, require_aware

__all__ = ["LOOKAHEAD_DAYS", "first_available", "nearest", "spread"]

LOOKAHEAD_DAYS = 366
"""How far `first_available` looks when the rules set no maximum advance."""

_DAY_SECONDS = 86_400
_NO_DAY_COUNTS: Mapping[date, int] = MappingProxyType({})
_by_start = attrgetter("start", "end")


def _check_k(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k!r}")


def nearest(slots: Sequence[Slot], requested: datetime, k: int) -> tuple[Slot, ...]:
    """The k slots whose start is closest to `requested`; ties go to the earlier slot."""
    require_aware(requested, "requested")
    _check_k(k)
    unique = dict.fromkeys(slots)

    def distance(slot: Slot) -> tuple[timedelta, datetime]:
        return abs(slot.start - requested), slot.start

    return tuple(sorted(heapq.nsmallest(k, unique, key=distance), key=_by_start))


def spread(slots: Sequence[Slot], day: date, time_zone: str, k: int) -> tuple[Slot, ...]:
    """k slots of local date `day` in `time_zone`, evenly spaced over that day's slots.

    With n slots on the day and n > k, pick i (0 <= i < k) is the slot at position
    round(i * (n - 1) / (k - 1)), so the first and the last slot are always offered and the
    rest fall in between (morning, midday, afternoon for k = 3).
    """
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ValueError(f"day must be a date, got {day!r}")
    zone = get_zone(time_zone)
    _check_k(k)
    on_day = sorted(
        {slot for slot in slots if slot.start.astimezone(zone).date() == day}, key=_by_start
    )
    count = len(on_day)
    if count <= k:
        return tuple(on_day)
    if k == 1:
        return (on_day[0],)
    # Integer round-half-up keeps the picks deterministic across platforms.
    gaps = k - 1
    return tuple(on_day[(2 * i * (count - 1) + gaps) // (2 * gaps)] for i in range(k))


def first_available(
    rules: SlotRules,
    *,
    after: datetime,
    now: datetime,
    busy: Sequence[Interval],
    k: int,
    day_counts: Mapping[date, int] = _NO_DAY_COUNTS,
) -> tuple[Slot, ...]:
    """The next k bookable slots starting at or after `after` (UTC, sorted)."""
    require_aware(after, "after")
    _check_k(k)
    plan = SlotPlan.build(rules, now)
    if k == 0:
        return ()
    # Starts before now + notice are never bookable, so the search may begin there.
    first = max(ceil_seconds(micros(after)), plan.earliest_start)
    if plan.advance_limit is not None:
        last = plan.advance_limit - 1
    else:
        last = first + LOOKAHEAD_DAYS * _DAY_SECONDS - 1
    index = BusyIndex.build(busy)
    found: list[int] = []
    chunk = _DAY_SECONDS
    while first <= last and len(found) < k:
        # Chunks partition start times, so no slot is lost or repeated at a chunk boundary.
        chunk_last = min(first + chunk - 1, last)
        free, _ = select_starts(plan, candidate_starts(plan, first, chunk_last), index, day_counts)
        found.extend(free)
        first = chunk_last + 1
        chunk *= 2
    return to_slots(found[:k], plan.duration)
