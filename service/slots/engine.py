"""Candidate generation and filtering: the rules that decide what a caller may book.

1. Opening hours are local times in the business zone; everything else (range, now, busy time,
   slots) is an absolute instant, and all comparisons are on absolute time.
2. The windows of local date D are the weekly hours of D's weekday unless D has an override,
   which replaces them entirely (an override with no windows closes the day). A window is
   [start, end) in local wall time: an end of 24:00 is the next midnight, an end earlier than the
   start crosses midnight into D+1, an end equal to the start is no window. A window belongs to
   the date it starts on (an override for D never cuts a window of D-1 that runs past
   midnight). Windows are not merged.
3. A local time that does not exist (spring-forward gap) is read with the offset in force before
   the change, i.e. moved forward by the gap (02:30 becomes 03:30); a local time that occurs
   twice (fall-back) is its first occurrence. This is zoneinfo with fold=0.
4. Candidates in a window [ws, we) are s = ws + k * step (k = 0, 1, ...) in absolute time while
   s + duration <= we. Nothing else moves the grid: range start, now and notice only filter.
5. A candidate s is offered iff s >= range start and s + duration <= range end (otherwise it is
   not a candidate of this query at all), and then, checked in this order and counted under the
   first that fails:
   NOTICE    s >= now + minimum notice;
   ADVANCE   with max_advance_days N set, s is before the local midnight that starts today + N + 1,
             where today is now's local date in the business zone;
   BUSY      [s - buffer_before, s + duration + buffer_after) overlaps no busy interval (half-open,
             so touching is fine; busy intervals with end <= start are ignored; buffers are
             checked against busy time only, not against window edges);
   DAILY_CAP with daily_cap set, day_counts.get(local date of s, 0) < daily_cap. Slots offered by
             the same call do not count against the cap.
6. Output: unique starts (overlapping windows may produce the same start), sorted, each with its
   end, in UTC.

Which local dates are examined: every date whose windows could produce a candidate inside the
range, from two days before the range start's local date (windows crossing midnight, DST
shifts) to one day after the range end's local date.

Why it is fast: everything becomes integer epoch seconds once; candidates are generated with
range() per window, notice and advance are two bisections on the sorted candidates, busy time is
checked through `BusyIndex`, and datetimes are only created for the slots that are returned.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from types import MappingProxyType
from zoneinfo import ZoneInfo

from .busy import BusyIndex
from .results import Slot, SlotRejection, SlotResult, engine_slots
from .rules import Interval, SlotRules
from .windows import dates_between, window_spans
from .zones import (
    UTC,
    ceil_seconds,
    floor_seconds,
    get_zone,
    local_date,
    micros,
    require_aware,
    wall_to_epoch,
)

__all__ = [
    "SlotPlan",
    "candidate_starts",
    "compute_slots",
    "filter_offered_starts",
    "select_starts",
    "to_slots",
]

_NO_DAY_COUNTS: Mapping[date, int] = MappingProxyType({})
_MICROS_PER_SECOND = 1_000_000
_TWO_DAYS = timedelta(days=2)
_ONE_DAY = timedelta(days=1)
_from_epoch = partial(datetime.fromtimestamp, tz=UTC)


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """The rules resolved against one `now`, in integer epoch seconds."""

    rules: SlotRules
    zone: ZoneInfo
    duration: int
    step: int
    buffer_before: int
    buffer_after: int
    earliest_start: int
    """Smallest start that satisfies the minimum notice."""
    advance_limit: int | None
    """Starts must be before this instant; None when there is no advance limit."""

    @classmethod
    def build(cls, rules: SlotRules, now: datetime) -> SlotPlan:
        require_aware(now, "now")
        zone = get_zone(rules.time_zone)
        duration = _seconds(rules.duration)
        notice_us = _seconds(rules.minimum_notice) * _MICROS_PER_SECOND
        advance_limit: int | None = None
        if rules.max_advance_days is not None:
            today = now.astimezone(zone).date()
            try:
                advance_limit = wall_to_epoch(
                    zone, today + timedelta(days=rules.max_advance_days + 1), 0
                )
            except OverflowError:
                # A limit past year 9999 limits nothing.
                advance_limit = None
        return cls(
            rules=rules,
            zone=zone,
            duration=duration,
            step=_seconds(rules.effective_step),
            buffer_before=_seconds(rules.buffer_before),
            buffer_after=_seconds(rules.buffer_after),
            earliest_start=ceil_seconds(micros(now) + notice_us),
            advance_limit=advance_limit,
        )


def _seconds(value: timedelta) -> int:
    # SlotRules guarantees whole seconds.
    return value.days * 86_400 + value.seconds


def candidate_starts(plan: SlotPlan, first: int, last: int) -> list[int]:
    """Sorted unique in-window starts s (epoch seconds) with first <= s <= last."""
    if last < first:
        return []
    zone, duration, step = plan.zone, plan.duration, plan.step
    starts: list[int] = []
    for day in dates_between(
        local_date(zone, first) - _TWO_DAYS, local_date(zone, last) + _ONE_DAY
    ):
        for window_start, window_end in window_spans(plan.rules, zone, day):
            highest = min(window_end - duration, last)
            lowest = window_start
            if first > lowest:
                # First grid point at or after `first`; the grid is anchored at window_start.
                lowest += -(-(first - window_start) // step) * step
            if lowest <= highest:
                starts.extend(range(lowest, highest + 1, step))
    return sorted(set(starts))


def select_starts(
    plan: SlotPlan,
    starts: list[int],
    busy: BusyIndex,
    day_counts: Mapping[date, int],
) -> tuple[list[int], dict[SlotRejection, int]]:
    """Apply the filters of rule 5 to sorted candidate starts.

    Returns the surviving starts and, per filter, how many candidates it removed first.
    """
    rejected = dict.fromkeys(SlotRejection, 0)
    low = bisect_left(starts, plan.earliest_start)
    rejected[SlotRejection.NOTICE] = low
    high = len(starts)
    if plan.advance_limit is not None:
        high = max(low, bisect_left(starts, plan.advance_limit))
        rejected[SlotRejection.ADVANCE] = len(starts) - high
    pool = starts[low:high]

    free = busy.free(pool, plan.buffer_before, plan.duration + plan.buffer_after)
    rejected[SlotRejection.BUSY] = len(pool) - len(free)

    cap = plan.rules.daily_cap
    if cap is not None and free:
        if cap <= 0:
            kept: list[int] = []
        else:
            full_days = {day for day, count in day_counts.items() if count >= cap}
            # Local dates cost a zone conversion each, so skip them when no day is full.
            kept = (
                [s for s in free if local_date(plan.zone, s) not in full_days]
                if full_days
                else free
            )
        rejected[SlotRejection.DAILY_CAP] = len(free) - len(kept)
        free = kept
    return free, rejected


def to_slots(starts: Sequence[int], duration: int) -> tuple[Slot, ...]:
    return engine_slots(map(_from_epoch, starts), timedelta(seconds=duration))


def compute_slots(
    rules: SlotRules,
    *,
    range_start: datetime,
    range_end: datetime,
    now: datetime,
    busy: Sequence[Interval] = (),
    day_counts: Mapping[date, int] = _NO_DAY_COUNTS,
) -> SlotResult:
    """Bookable slots with start >= range_start and end <= range_end (see the module rules).

    All datetimes must be timezone-aware (``ValueError`` otherwise). An empty or inverted range
    is not an error: it has no candidates. `day_counts` holds the appointments already booked per
    local date of the business zone; it is only read.
    """
    require_aware(range_start, "range_start")
    require_aware(range_end, "range_end")
    plan = SlotPlan.build(rules, now)
    first = ceil_seconds(micros(range_start))
    last = floor_seconds(micros(range_end)) - plan.duration
    starts = candidate_starts(plan, first, last)
    if not starts:
        return SlotResult((), 0, MappingProxyType(dict.fromkeys(SlotRejection, 0)))
    free, rejected = select_starts(plan, starts, BusyIndex.build(busy), day_counts)
    return SlotResult(to_slots(free, plan.duration), len(starts), MappingProxyType(rejected))


def filter_offered_starts(
    rules: SlotRules,
    offered: Sequence[datetime],
    *,
    range_start: datetime,
    range_end: datetime,
    now: datetime,
    busy: Sequence[Interval] = (),
    day_counts: Mapping[date, int] = _NO_DAY_COUNTS,
) -> SlotResult:
    """Rule 5 applied to starts a slot-based provider offers, instead of our own grid.

    Cal.com and Calendly compute starts from their own event-type rules, which stay
    authoritative; an offered start becomes a candidate only if [s, s + duration) lies inside one
    of the agent's windows (rules 2 and 3) and inside the range. Then the same filters as for our
    own candidates apply: notice, advance, busy time (our own pending claims), daily cap.
    """
    require_aware(range_start, "range_start")
    require_aware(range_end, "range_end")
    plan = SlotPlan.build(rules, now)
    first = ceil_seconds(micros(range_start))
    last = floor_seconds(micros(range_end)) - plan.duration
    wanted = sorted({ceil_seconds(micros(s)) for s in offered})
    wanted = [s for s in wanted if first <= s <= last]
    if not wanted:
        return SlotResult((), 0, MappingProxyType(dict.fromkeys(SlotRejection, 0)))
    spans: list[tuple[int, int]] = []
    for day in dates_between(
        local_date(plan.zone, wanted[0]) - _TWO_DAYS, local_date(plan.zone, wanted[-1]) + _ONE_DAY
    ):
        spans.extend(window_spans(rules, plan.zone, day))
    starts = [s for s in wanted if any(ws <= s and s + plan.duration <= we for ws, we in spans)]
    if not starts:
        return SlotResult((), 0, MappingProxyType(dict.fromkeys(SlotRejection, 0)))
    free, rejected = select_starts(plan, starts, BusyIndex.build(busy), day_counts)
    return SlotResult(to_slots(free, plan.duration), len(starts), MappingProxyType(rejected))
