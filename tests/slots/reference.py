"""A deliberately naive slot engine, used only to check the real one.

Simple and slow on purpose: it walks local dates, builds each window's ends from wall-clock
fields with zoneinfo (fold=0), walks every absolute minute inside the window, and applies rule 5
with plain aware-datetime comparisons. It shares no code with `service.slots` beyond the input
and output types. Durations, steps and buffers must be whole minutes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.slots import Interval, SlotRejection, SlotRules

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def _wall(zone: ZoneInfo, day: date, minute_of_day: int) -> datetime:
    """Wall time `day` + minutes (0..1440) in `zone`, as an absolute UTC datetime (fold=0)."""
    if minute_of_day == 1440:
        day, minute_of_day = day + DAY, 0
    local = datetime(day.year, day.month, day.day, minute_of_day // 60, minute_of_day % 60)
    return local.replace(tzinfo=zone).astimezone(UTC)


def reference_windows(rules: SlotRules, day: date) -> Iterator[tuple[datetime, datetime]]:
    """(start, end) UTC of every window that starts on local `day` (may be empty/inverted)."""
    zone = ZoneInfo(rules.time_zone)
    windows = rules.overrides[day] if day in rules.overrides else rules.weekly_hours[day.weekday()]
    for window in windows:
        if window.end_minute == window.start_minute:
            continue
        end_day = day if window.end_minute > window.start_minute else day + DAY
        yield _wall(zone, day, window.start_minute), _wall(zone, end_day, window.end_minute)


def _whole_minutes(value: timedelta) -> int:
    assert value % MINUTE == timedelta(0), "the reference only handles whole minutes"
    return value // MINUTE


def reference_slots(
    rules: SlotRules,
    *,
    range_start: datetime,
    range_end: datetime,
    now: datetime,
    busy: Sequence[Interval] = (),
    day_counts: Mapping[date, int] | None = None,
) -> tuple[list[datetime], int, dict[SlotRejection, int]]:
    """(slot starts in UTC, candidate count, rejections) by brute force."""
    counts = day_counts or {}
    zone = ZoneInfo(rules.time_zone)
    duration = rules.duration
    step_minutes = _whole_minutes(rules.step or rules.duration)
    _whole_minutes(duration)
    before, after = rules.buffer_before, rules.buffer_after

    candidates: set[datetime] = set()
    day = range_start.astimezone(zone).date() - 3 * DAY
    last_day = range_end.astimezone(zone).date() + 2 * DAY
    while day <= last_day:
        for window_start, window_end in reference_windows(rules, day):
            minute = 0
            while window_start + minute * MINUTE + duration <= window_end:
                start = window_start + minute * MINUTE
                on_grid = minute % step_minutes == 0
                if on_grid and start >= range_start and start + duration <= range_end:
                    candidates.add(start)
                minute += 1
        day += DAY

    advance_limit = None
    if rules.max_advance_days is not None:
        today = now.astimezone(zone).date()
        limit_day = today + (rules.max_advance_days + 1) * DAY
        advance_limit = datetime.combine(limit_day, time(0), tzinfo=zone)

    slots: list[datetime] = []
    rejected = dict.fromkeys(SlotRejection, 0)
    for start in sorted(candidates):
        end = start + duration
        if start < now + rules.minimum_notice:
            rejected[SlotRejection.NOTICE] += 1
        elif advance_limit is not None and start >= advance_limit:
            rejected[SlotRejection.ADVANCE] += 1
        elif any(
            b.end > b.start and b.start < end + after and start - before < b.end for b in busy
        ):
            rejected[SlotRejection.BUSY] += 1
        elif (
            rules.daily_cap is not None
            and counts.get(start.astimezone(zone).date(), 0) >= rules.daily_cap
        ):
            rejected[SlotRejection.DAILY_CAP] += 1
        else:
            slots.append(start)
    return slots, len(candidates), rejected
