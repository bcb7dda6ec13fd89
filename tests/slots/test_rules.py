"""Validation of the input dataclasses: every invalid input is a ValueError."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from service.slots import Interval, LocalWindow, SlotRules

from .strategies import every_day, win

OPEN = every_day(win("09:00", "17:00"))


def test_local_window_accepts_its_whole_range() -> None:
    assert LocalWindow(0, 1440).length_minutes == 1440
    assert LocalWindow(1439, 0).crosses_midnight
    assert LocalWindow(1320, 120).length_minutes == 240
    assert LocalWindow(540, 540).length_minutes == 0
    assert LocalWindow.between("22:00", "24:00") == LocalWindow(1320, 1440)
    assert LocalWindow.between("9:05", "17:30") == LocalWindow(545, 1050)


@pytest.mark.parametrize(
    ("start", "end"),
    [(-1, 10), (1440, 10), (0, 1441), (0, -1), (True, 10), (0, False), (1.5, 10), ("9", 10)],
)
def test_local_window_rejects_out_of_range_or_non_int(start: object, end: object) -> None:
    with pytest.raises(ValueError, match="_minute must be an int"):
        LocalWindow(start, end)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "end"), [("24:00", "01:00"), ("9", "10:00"), ("09:60", "10:00"), ("09:00", "24:01")]
)
def test_local_window_between_rejects_bad_text(start: str, end: str) -> None:
    with pytest.raises(ValueError, match=r"time|window"):
        LocalWindow.between(start, end)


def test_interval_requires_aware_datetimes() -> None:
    aware = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"Interval\.start must be timezone-aware"):
        Interval(aware.replace(tzinfo=None), aware)
    with pytest.raises(ValueError, match=r"Interval\.end must be timezone-aware"):
        Interval(aware, aware.replace(tzinfo=None))
    with pytest.raises(ValueError, match="must be a datetime"):
        Interval(date(2026, 6, 1), aware)  # type: ignore[arg-type]
    # Empty and inverted intervals are legal inputs (the engine ignores them).
    assert Interval(aware, aware - timedelta(hours=1)).end < aware


def test_slot_rules_defaults_and_normalisation() -> None:
    weekly = [[win("09:00", "12:00")], [], [], [], [], [], []]
    overrides: dict[date, list[LocalWindow]] = {date(2026, 12, 25): []}
    rules = SlotRules("Europe/Berlin", weekly, overrides)  # type: ignore[arg-type]
    assert rules.weekly_hours[0] == (win("09:00", "12:00"),)
    assert rules.overrides[date(2026, 12, 25)] == ()
    assert rules.duration == timedelta(minutes=30)
    assert rules.effective_step == timedelta(minutes=30)
    assert (rules.buffer_before, rules.buffer_after, rules.minimum_notice) == (timedelta(0),) * 3
    assert (rules.max_advance_days, rules.daily_cap) == (None, None)
    # The rules keep their own copy: later edits to the caller's dict change nothing.
    overrides[date(2026, 12, 26)] = []
    assert date(2026, 12, 26) not in rules.overrides
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.duration = timedelta(hours=1)  # type: ignore[misc]
    assert rules.windows_on(date(2026, 12, 21)) == (win("09:00", "12:00"),)  # a Monday
    assert rules.windows_on(date(2026, 12, 25)) == ()


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "America", "../etc/passwd", "utc "])
def test_unknown_time_zone(zone: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        SlotRules(zone, OPEN)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weekly_hours": OPEN[:6]}, "7 entries"),
        ({"weekly_hours": (*OPEN, ())}, "7 entries"),
        ({"weekly_hours": "Mon-Fri"}, "sequence of 7 days"),
        ({"weekly_hours": (win("09:00", "10:00"),) * 7}, "sequence of LocalWindow"),
        ({"weekly_hours": (("09:00-10:00",),) * 7}, "only LocalWindow"),
        ({"overrides": [(date(2026, 1, 1), ())]}, "mapping"),
        ({"overrides": {datetime(2026, 1, 1): ()}}, "must be dates"),
        ({"overrides": {"2026-01-01": ()}}, "must be dates"),
        ({"overrides": {date(2026, 1, 1): (None,)}}, "only LocalWindow"),
        ({"duration": timedelta(0)}, "duration must be positive"),
        ({"duration": timedelta(minutes=-30)}, "duration must be positive"),
        ({"duration": 30}, "duration must be a timedelta"),
        ({"duration": timedelta(minutes=30, microseconds=1)}, "whole number of seconds"),
        ({"step": timedelta(0)}, "step must be positive"),
        ({"buffer_before": timedelta(minutes=-5)}, "buffer_before must not be negative"),
        ({"buffer_after": timedelta(minutes=-5)}, "buffer_after must not be negative"),
        ({"minimum_notice": timedelta(seconds=-1)}, "minimum_notice must not be negative"),
        ({"max_advance_days": -1}, "max_advance_days"),
        ({"max_advance_days": 1.5}, "max_advance_days"),
        ({"daily_cap": -1}, "daily_cap"),
        ({"daily_cap": True}, "daily_cap"),
    ],
)
def test_invalid_rules(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"time_zone": "America/New_York", "weekly_hours": OPEN}
    arguments.update(changes)
    with pytest.raises(ValueError, match=message):
        SlotRules(**arguments)  # type: ignore[arg-type]
