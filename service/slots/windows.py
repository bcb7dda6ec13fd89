"""Local opening windows -> absolute intervals.

Rules enforced here:

* The windows of local date D are the weekly hours of D's weekday unless D has an override,
  which replaces them entirely (an override with no windows closes the day).
* A window is [start, end) in local wall time. An end of 24:00 is the next midnight, an end
  earlier than the start is on D+1, and an end equal to the start is no window.
* A window belongs to the date it starts on: an override for D never cuts a window of D-1 that
  runs past midnight. Windows are not merged with each other.
* Both ends are read with fold=0 (see `zones.wall_to_epoch`). A window whose ends collapse or
  invert across a DST change (02:30-03:00 on a spring-forward night) is empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .rules import MINUTES_PER_DAY, Interval, SlotRules
from .zones import UTC, get_zone, wall_to_epoch

__all__ = ["dates_between", "window_spans", "windows_for_date"]

_ONE_DAY = timedelta(days=1)
# A window may end on D+1 and local wall times may sit a day away from UTC, so stay clear of
# both ends of the calendar to keep every converted instant representable.
_FIRST_WINDOW_DATE = date.min + timedelta(days=2)
_LAST_WINDOW_DATE = date.max - timedelta(days=3)


def dates_between(first: date, last: date) -> Iterator[date]:
    """Every date from `first` to `last` inclusive, clipped to the dates a window can use."""
    day = max(first, _FIRST_WINDOW_DATE)
    last = min(last, _LAST_WINDOW_DATE)
    while day <= last:
        yield day
        day += _ONE_DAY


def window_spans(rules: SlotRules, zone: ZoneInfo, day: date) -> list[tuple[int, int]]:
    """(start, end) epoch seconds of the windows starting on local date `day`.

    Spans may be empty or inverted after a DST change; callers treat those as offering nothing.
    """
    spans: list[tuple[int, int]] = []
    for window in rules.windows_on(day):
        start, end = window.start_minute, window.end_minute
        if end == start:
            continue
        if end < start:
            end += MINUTES_PER_DAY
        spans.append((wall_to_epoch(zone, day, start), wall_to_epoch(zone, day, end)))
    return spans


def windows_for_date(rules: SlotRules, day: date) -> tuple[Interval, ...]:
    """The non-empty windows that start on local date `day`, as UTC intervals, in rule order."""
    zone = get_zone(rules.time_zone)
    return tuple(
        Interval(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        for start, end in window_spans(rules, zone, day)
        if end > start
    )
