"""Hypothesis strategies and small builders shared by the slot tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from service.slots import Interval, LocalWindow, SlotRules

# No example database: the tests must not write files into the work tree.
BASE_SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# DST changes (New York, Berlin, Adelaide, Lord Howe's 30-minute DST, Santiago's change at
# midnight, St John's half-hour zone, Casablanca's Ramadan change) and a quiet summer day.
ZONES = (
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/St_Johns",
    "Africa/Casablanca",
    "UTC",
)
ANCHORS = (
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2026, 4, 4, 16, 30, tzinfo=UTC),
    datetime(2026, 10, 3, 16, 30, tzinfo=UTC),
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),
    datetime(2026, 4, 5, 3, 0, tzinfo=UTC),
    datetime(2026, 9, 6, 4, 0, tzinfo=UTC),
    datetime(2026, 3, 22, 2, 0, tzinfo=UTC),
    datetime(2026, 6, 15, 12, 0, tzinfo=UTC),
)
CALLER_ZONES = (UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=45)))

NICE_MINUTES = (0, 30, 60, 90, 120, 150, 180, 540, 720, 1020, 1320, 1380, 1410)


def window_minutes(high: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([m for m in NICE_MINUTES if m <= high]), st.integers(0, high))


local_windows = st.builds(LocalWindow, window_minutes(1439), window_minutes(1440))
day_windows = st.lists(local_windows, max_size=3).map(tuple)
busy_day_windows = st.lists(local_windows, min_size=1, max_size=3).map(tuple)


def _td(minutes_: int) -> timedelta:
    return timedelta(minutes=minutes_)


@st.composite
def slot_rules(draw: st.DrawFn, anchor: datetime | None = None) -> SlotRules:
    """Random rules; overrides fall near `anchor` so that they matter."""
    zone = draw(st.sampled_from(ZONES))
    weekly = tuple(draw(st.one_of(busy_day_windows, day_windows)) for _ in range(7))
    overrides = {}
    if anchor is not None:
        for offset in draw(st.lists(st.integers(-2, 2), max_size=2, unique=True)):
            overrides[anchor.date() + timedelta(days=offset)] = draw(day_windows)
    duration = draw(st.one_of(st.sampled_from([15, 30, 45, 60, 90]), st.integers(1, 180)))
    step = draw(st.one_of(st.none(), st.sampled_from([15, 30]), st.integers(1, 120)))
    return SlotRules(
        time_zone=zone,
        weekly_hours=weekly,
        overrides=overrides,
        duration=_td(duration),
        buffer_before=_td(draw(st.sampled_from([0, 0, 5, 15, 45]))),
        buffer_after=_td(draw(st.sampled_from([0, 0, 10, 30]))),
        step=None if step is None else _td(step),
        minimum_notice=_td(draw(st.sampled_from([0, 0, 0, 30, 240, 1440]))),
        max_advance_days=draw(st.one_of(st.none(), st.none(), st.integers(0, 5))),
        daily_cap=draw(st.one_of(st.none(), st.integers(0, 3))),
    )


@st.composite
def instants(draw: st.DrawFn, anchor: datetime, spread_minutes: int) -> datetime:
    """An instant near `anchor`, sometimes off the minute grid, in a random caller zone."""
    instant = anchor + _td(draw(st.integers(-spread_minutes, spread_minutes)))
    if draw(st.booleans()):
        instant += timedelta(
            seconds=draw(st.integers(0, 59)), microseconds=draw(st.integers(0, 999_999))
        )
    return instant.astimezone(draw(st.sampled_from(CALLER_ZONES)))


@st.composite
def busy_lists(draw: st.DrawFn, around: datetime, max_size: int = 10) -> list[Interval]:
    """Busy intervals within about a day and a half of `around`."""
    busy = []
    for _ in range(draw(st.integers(0, max_size))):
        start = draw(instants(around, 2160))
        # Zero and negative lengths are in the mix on purpose: they must be ignored.
        length = draw(st.one_of(st.sampled_from([0, -30]), st.integers(1, 240)))
        busy.append(Interval(start, start + _td(length)))
    return busy


@st.composite
def scenarios(draw: st.DrawFn, max_range_minutes: int = 2 * 1440) -> dict[str, object]:
    """Keyword arguments for compute_slots, all centred on one DST-heavy anchor."""
    anchor = draw(st.sampled_from(ANCHORS))
    range_start = draw(instants(anchor, 1440))
    range_end = range_start + _td(draw(st.integers(-60, max_range_minutes)))
    day_counts = draw(
        st.dictionaries(
            st.sampled_from([anchor.date() + timedelta(days=d) for d in range(-3, 4)]),
            st.integers(0, 4),
            max_size=4,
        )
    )
    # Mostly a little before the range, as in a live call; sometimes inside or after it.
    now = range_start - _td(draw(st.integers(-1440, 3 * 1440)))
    if draw(st.booleans()):
        now += timedelta(microseconds=draw(st.integers(0, 59_999_999)))
    return {
        "rules": draw(slot_rules(anchor)),
        "range_start": range_start,
        "range_end": range_end,
        "now": now,
        "busy": draw(busy_lists(range_start + _td(720))),
        "day_counts": day_counts,
    }


# --- builders for example tests ---------------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def win(start: str, end: str) -> LocalWindow:
    return LocalWindow.between(start, end)


def every_day(*windows: LocalWindow) -> tuple[tuple[LocalWindow, ...], ...]:
    return (tuple(windows),) * 7


def rules_for(
    zone: str,
    *windows: LocalWindow,
    overrides: dict[date, tuple[LocalWindow, ...]] | None = None,
    **options: Any,
) -> SlotRules:
    """Rules with the same `windows` every day of the week."""
    return SlotRules(zone, every_day(*windows), overrides or {}, **options)


LONG_AGO = utc(2020, 1, 1)
