"""filter_offered_starts: a slot-based provider's starts through the agent's windows and rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.slots import Interval, LocalWindow, SlotRejection, SlotRules, filter_offered_starts

NY = "America/New_York"
NINE_TO_FIVE = (LocalWindow(9 * 60, 17 * 60),)
RULES = SlotRules(time_zone=NY, weekly_hours=(NINE_TO_FIVE,) * 5 + ((), ()))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY_START = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # Tuesday 00:00 New York
DAY_END = DAY_START + timedelta(days=1)


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 24, hour + 5, minute, tzinfo=UTC)  # New York is UTC-5


def test_offered_starts_outside_the_windows_are_dropped_off_grid_ones_kept() -> None:
    offered = [_at(8, 30), _at(9, 0), _at(9, 10), _at(16, 30), _at(16, 45), _at(17, 0)]
    result = filter_offered_starts(
        RULES, offered, range_start=DAY_START, range_end=DAY_END, now=NOW
    )
    # 9:10 is off our 30-minute grid but inside the window: the provider's grid wins.
    # 16:45 would end at 17:15, past the window; 8:30 and 17:00 start outside it.
    assert [s.start for s in result.slots] == [_at(9), _at(9, 10), _at(16, 30)]
    assert result.candidates == 3


def test_notice_advance_busy_and_cap_still_apply() -> None:
    rules = SlotRules(
        time_zone=NY,
        weekly_hours=(NINE_TO_FIVE,) * 5 + ((), ()),
        minimum_notice=timedelta(hours=27),  # now is 07:00 Monday New York: earliest 10:00 Tue
        max_advance_days=1,
        daily_cap=3,
    )
    offered = [_at(9), _at(10), _at(11), _at(12), _at(9) + timedelta(days=2)]
    claim = Interval(_at(11), _at(11, 30))
    result = filter_offered_starts(
        rules,
        offered,
        range_start=DAY_START,
        range_end=DAY_END + timedelta(days=3),
        now=NOW,
        busy=[claim],
        day_counts={},
    )
    assert [s.start for s in result.slots] == [_at(10), _at(12)]
    assert result.rejected[SlotRejection.NOTICE] == 1
    assert result.rejected[SlotRejection.ADVANCE] == 1
    assert result.rejected[SlotRejection.BUSY] == 1
    capped = filter_offered_starts(
        rules,
        offered,
        range_start=DAY_START,
        range_end=DAY_END,
        now=NOW,
        day_counts={_at(10).date(): 3},
    )
    assert capped.slots == ()
    assert capped.rejected[SlotRejection.DAILY_CAP] == 3


def test_nothing_offered_is_nothing_bookable() -> None:
    result = filter_offered_starts(RULES, [], range_start=DAY_START, range_end=DAY_END, now=NOW)
    assert result.slots == ()
    assert result.candidates == 0
