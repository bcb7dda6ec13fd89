"""nearest / spread / first_available."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.slots import (
    LOOKAHEAD_DAYS,
    Interval,
    Slot,
    compute_slots,
    first_available,
    nearest,
    spread,
)
from service.slots.engine import candidate_starts

from .strategies import BASE_SETTINGS, rules_for, scenarios, utc, win

NY = "America/New_York"
NEW_YORK = ZoneInfo(NY)
HALF_HOUR = timedelta(minutes=30)


def slot(start: datetime) -> Slot:
    start = start.astimezone(UTC)
    return Slot(start, start + HALF_HOUR)


def ny(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK)


# 2 June 2026, New York: 09:00 .. 13:30 every half hour (10 slots).
DAY_SLOTS = [slot(ny(6, 2, 9) + i * HALF_HOUR) for i in range(10)]


# --- nearest -------------------------------------------------------------------------------------


def test_nearest_takes_closest_on_both_sides_sorted() -> None:
    chosen = nearest(DAY_SLOTS, ny(6, 2, 11, 10), 3)
    assert [s.start for s in chosen] == [ny(6, 2, 10, 30), ny(6, 2, 11), ny(6, 2, 11, 30)]


def test_nearest_tie_prefers_the_earlier_slot() -> None:
    # 11:15 is 15 minutes from both 11:00 and 11:30.
    assert nearest(DAY_SLOTS, ny(6, 2, 11, 15), 1) == (slot(ny(6, 2, 11)),)
    assert nearest(DAY_SLOTS, ny(6, 2, 11, 15), 2) == (slot(ny(6, 2, 11)), slot(ny(6, 2, 11, 30)))


def test_nearest_edges_and_duplicates() -> None:
    shuffled = DAY_SLOTS[::-1] + DAY_SLOTS[:3]
    assert nearest(shuffled, ny(6, 2, 6), 2) == tuple(DAY_SLOTS[:2])
    assert nearest(shuffled, ny(6, 2, 23), 2) == tuple(DAY_SLOTS[-2:])
    assert nearest(shuffled, ny(6, 2, 9), 50) == tuple(DAY_SLOTS)
    assert nearest(shuffled, ny(6, 2, 9), 0) == ()
    assert nearest([], ny(6, 2, 9), 3) == ()


def test_nearest_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        nearest(DAY_SLOTS, datetime(2026, 6, 2, 11), 1)
    with pytest.raises(ValueError, match="non-negative int"):
        nearest(DAY_SLOTS, ny(6, 2, 11), -1)


@settings(BASE_SETTINGS, max_examples=60)
@given(
    st.lists(st.integers(0, 200), unique=True, max_size=30),
    st.integers(-20, 220),
    st.integers(0, 8),
)
def test_nearest_matches_brute_force(offsets: list[int], requested: int, k: int) -> None:
    base = utc(2026, 6, 2)
    slots = [slot(base + timedelta(minutes=5 * o)) for o in offsets]
    when = base + timedelta(minutes=5 * requested)
    ranked = sorted(slots, key=lambda s: (abs(s.start - when), s.start))[:k]
    assert nearest(slots, when, k) == tuple(sorted(ranked, key=lambda s: s.start))


# --- spread --------------------------------------------------------------------------------------


def test_spread_picks_first_middle_last() -> None:
    # n = 10, k = 3: positions 0, round(4.5) = 5, 9.
    picked = spread(DAY_SLOTS, date(2026, 6, 2), NY, 3)
    assert picked == (DAY_SLOTS[0], DAY_SLOTS[5], DAY_SLOTS[9])
    assert spread(DAY_SLOTS, date(2026, 6, 2), NY, 4) == (
        DAY_SLOTS[0],
        DAY_SLOTS[3],
        DAY_SLOTS[6],
        DAY_SLOTS[9],
    )


def test_spread_small_k_and_short_days() -> None:
    assert spread(DAY_SLOTS, date(2026, 6, 2), NY, 1) == (DAY_SLOTS[0],)
    assert spread(DAY_SLOTS[:2], date(2026, 6, 2), NY, 3) == tuple(DAY_SLOTS[:2])
    assert spread(DAY_SLOTS, date(2026, 6, 2), NY, 0) == ()
    assert spread(DAY_SLOTS, date(2026, 6, 3), NY, 3) == ()


def test_spread_uses_the_local_day_of_the_given_zone() -> None:
    late = slot(ny(6, 1, 23))  # 03:00Z on 2 June, but 1 June in New York
    slots = [late, *DAY_SLOTS[:2]]
    assert spread(slots, date(2026, 6, 2), NY, 5) == tuple(DAY_SLOTS[:2])
    assert spread(slots, date(2026, 6, 2), "UTC", 5) == (late, *DAY_SLOTS[:2])


def test_spread_is_deterministic_and_ignores_input_order() -> None:
    assert spread(DAY_SLOTS[::-1], date(2026, 6, 2), NY, 3) == spread(
        DAY_SLOTS, date(2026, 6, 2), NY, 3
    )


def test_spread_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="time zone"):
        spread(DAY_SLOTS, date(2026, 6, 2), "Nowhere/Special", 3)
    with pytest.raises(ValueError, match="must be a date"):
        spread(DAY_SLOTS, datetime(2026, 6, 2), NY, 3)
    with pytest.raises(ValueError, match="non-negative int"):
        spread(DAY_SLOTS, date(2026, 6, 2), NY, -2)


# --- first_available -----------------------------------------------------------------------------

WEEKDAYS = rules_for(NY, win("09:00", "10:00"))


def test_first_available_returns_next_k_and_skips_busy() -> None:
    busy = [Interval(ny(6, 2, 9), ny(6, 2, 9, 30))]
    found = first_available(WEEKDAYS, after=ny(6, 2, 8), now=ny(6, 1, 12), busy=busy, k=3)
    assert [s.start for s in found] == [ny(6, 2, 9, 30), ny(6, 3, 9), ny(6, 3, 9, 30)]
    assert all(s.start.tzinfo is UTC for s in found)


def test_first_available_starts_at_or_after_after_and_respects_notice() -> None:
    rules = rules_for(NY, win("09:00", "10:00"), minimum_notice=timedelta(hours=1))
    # `after` is in the past; now + notice = 09:15 moves past the 09:00 slot.
    found = first_available(rules, after=ny(6, 1, 0), now=ny(6, 2, 8, 15), busy=[], k=2)
    assert [s.start for s in found] == [ny(6, 2, 9, 30), ny(6, 3, 9)]
    found = first_available(WEEKDAYS, after=ny(6, 2, 9, 30), now=ny(6, 1, 0), busy=[], k=1)
    assert [s.start for s in found] == [ny(6, 2, 9, 30)]


def test_first_available_stops_at_the_advance_window() -> None:
    rules = rules_for(NY, win("09:00", "10:00"), max_advance_days=2)
    found = first_available(rules, after=ny(6, 1, 0), now=ny(6, 1, 0), busy=[], k=50)
    assert len(found) == 6
    assert found[-1].start == ny(6, 3, 9, 30)


def test_first_available_looks_366_days_without_advance_limit() -> None:
    closed = ((),) * 7
    now = ny(1, 5, 12)

    def with_override(day: date) -> tuple[Slot, ...]:
        rules = dataclasses.replace(
            WEEKDAYS, weekly_hours=closed, overrides={day: (win("09:00", "09:30"),)}
        )
        return first_available(rules, after=now, now=now, busy=[], k=1)

    assert LOOKAHEAD_DAYS == 366
    assert with_override(date(2027, 1, 5)) == (slot(datetime(2027, 1, 5, 9, tzinfo=NEW_YORK)),)
    assert with_override(date(2027, 1, 7)) == ()


def test_first_available_stops_early(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []

    def counting(plan: Any, first: int, last: int) -> list[int]:
        calls.append((first, last))
        return candidate_starts(plan, first, last)

    monkeypatch.setattr("service.slots.offers.candidate_starts", counting)
    found = first_available(WEEKDAYS, after=ny(6, 2, 8), now=ny(6, 2, 8), busy=[], k=2)
    assert len(found) == 2
    assert len(calls) == 1
    assert calls[0][1] - calls[0][0] < 86_400
    # A closed stretch makes it look further, in growing chunks, not one day at a time.
    calls.clear()
    sparse = dataclasses.replace(
        WEEKDAYS, weekly_hours=((),) * 7, overrides={date(2026, 9, 1): (win("09:00", "10:00"),)}
    )
    assert len(first_available(sparse, after=ny(6, 2, 8), now=ny(6, 2, 8), busy=[], k=5)) == 2
    assert len(calls) <= 10


def test_first_available_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        first_available(WEEKDAYS, after=datetime(2026, 6, 2), now=ny(6, 2, 8), busy=[], k=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        first_available(WEEKDAYS, after=ny(6, 2, 8), now=datetime(2026, 6, 2), busy=[], k=1)
    with pytest.raises(ValueError, match="non-negative int"):
        first_available(WEEKDAYS, after=ny(6, 2, 8), now=ny(6, 2, 8), busy=[], k=-1)
    assert first_available(WEEKDAYS, after=ny(6, 2, 8), now=ny(6, 2, 8), busy=[], k=0) == ()


@settings(BASE_SETTINGS, max_examples=80)
@given(scenarios(), st.integers(0, 4), st.integers(1, 12))
def test_first_available_equals_the_head_of_one_long_query(
    scenario: dict[str, Any], advance: int, k: int
) -> None:
    rules = dataclasses.replace(scenario["rules"], max_advance_days=advance)
    after = scenario["range_start"]
    common = {
        "now": scenario["now"],
        "busy": scenario["busy"],
        "day_counts": scenario["day_counts"],
    }
    found = first_available(rules, after=after, k=k, **common)
    # The advance limit is at most 6 days after `now`, and `now` within 3 days of `after`.
    everything = compute_slots(
        rules, range_start=after, range_end=after + timedelta(days=12), **common
    )
    assert found == everything.slots[:k]
