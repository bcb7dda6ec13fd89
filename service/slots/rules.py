"""Inputs of the slot engine: local windows, absolute intervals and booking rules.

Rules enforced here (every violation is a ``ValueError`` raised at construction):

* `LocalWindow` is [start, end) in local wall-clock minutes since midnight. ``start_minute`` is
  0..1439 and ``end_minute`` 0..1440. An end of 1440 is "24:00" (the next midnight), an end
  earlier than the start crosses midnight into the next day, and an end equal to the start is an
  empty window that offers nothing.
* `Interval` is an absolute half-open [start, end) of timezone-aware datetimes in any zone. An
  interval with end <= start is allowed and means "no time" (busy feeds contain such rows).
* `SlotRules` names a loadable IANA time zone, has exactly seven weekdays of windows (Monday
  first), a positive duration, non-negative buffers and notice, a positive step (or ``None`` for
  step == duration), and non-negative advance-day and daily-cap limits. Every timedelta is a
  whole number of seconds, so the engine can work on exact integer seconds.
* Collections are copied into tuples and a read-only mapping, so a rules object cannot change
  after it has been validated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import TypeGuard

from .zones import get_zone, require_aware, whole_seconds

__all__ = ["MINUTES_PER_DAY", "Interval", "LocalWindow", "SlotRules"]

MINUTES_PER_DAY = 1440

_DEFAULT_DURATION = timedelta(minutes=30)
_NO_TIME = timedelta(0)


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int subclass; True as a minute or a cap is a caller bug, not a 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_hhmm(text: str) -> int:
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or len(minutes) != 2 or not minutes.isdigit():
        raise ValueError(f"expected a time as HH:MM, got {text!r}")
    hour, minute = int(hours), int(minutes)
    if minute > 59 or hour > 24 or (hour == 24 and minute != 0):
        raise ValueError(f"time out of range: {text!r}")
    return hour * 60 + minute


@dataclass(frozen=True, slots=True)
class LocalWindow:
    """Opening hours [start, end) in local wall time, as minutes since local midnight."""

    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not _is_int(self.start_minute) or not 0 <= self.start_minute < MINUTES_PER_DAY:
            raise ValueError(
                f"start_minute must be an int in 0..{MINUTES_PER_DAY - 1}, "
                f"got {self.start_minute!r}"
            )
        if not _is_int(self.end_minute) or not 0 <= self.end_minute <= MINUTES_PER_DAY:
            raise ValueError(
                f"end_minute must be an int in 0..{MINUTES_PER_DAY} (1440 is 24:00), "
                f"got {self.end_minute!r}"
            )

    @classmethod
    def between(cls, start: str, end: str) -> LocalWindow:
        """Build a window from "HH:MM" strings; "24:00" is accepted as an end."""
        start_minute = _parse_hhmm(start)
        if start_minute >= MINUTES_PER_DAY:
            raise ValueError(f"a window cannot start at {start!r}")
        return cls(start_minute, _parse_hhmm(end))

    @property
    def crosses_midnight(self) -> bool:
        return self.end_minute < self.start_minute

    @property
    def length_minutes(self) -> int:
        """Wall-clock length; the absolute length differs on DST change days."""
        if self.end_minute < self.start_minute:
            return self.end_minute + MINUTES_PER_DAY - self.start_minute
        return self.end_minute - self.start_minute


@dataclass(frozen=True, slots=True)
class Interval:
    """Absolute half-open [start, end) between two timezone-aware datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware(self.start, "Interval.start")
        require_aware(self.end, "Interval.end")


def _windows(value: object, what: str) -> tuple[LocalWindow, ...]:
    if isinstance(value, LocalWindow) or not isinstance(value, Iterable):
        raise ValueError(f"{what} must be a sequence of LocalWindow, got {value!r}")
    windows = tuple(value)
    for window in windows:
        if not isinstance(window, LocalWindow):
            raise ValueError(f"{what} must contain only LocalWindow, got {window!r}")
    return windows


def _empty_overrides() -> Mapping[date, tuple[LocalWindow, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SlotRules:
    """Everything that decides which appointment starts a business offers."""

    time_zone: str
    weekly_hours: tuple[tuple[LocalWindow, ...], ...]
    overrides: Mapping[date, tuple[LocalWindow, ...]] = field(default_factory=_empty_overrides)
    duration: timedelta = _DEFAULT_DURATION
    buffer_before: timedelta = _NO_TIME
    buffer_after: timedelta = _NO_TIME
    step: timedelta | None = None
    minimum_notice: timedelta = _NO_TIME
    max_advance_days: int | None = None
    daily_cap: int | None = None

    def __post_init__(self) -> None:
        get_zone(self.time_zone)

        if isinstance(self.weekly_hours, str | bytes) or not isinstance(
            self.weekly_hours, Iterable
        ):
            raise ValueError("weekly_hours must be a sequence of 7 days (Monday first)")
        weekly = tuple(
            _windows(day, f"weekly_hours[{index}]") for index, day in enumerate(self.weekly_hours)
        )
        if len(weekly) != 7:
            raise ValueError(
                f"weekly_hours must have 7 entries (Monday..Sunday), got {len(weekly)}"
            )
        # Writing through object.__setattr__ is the documented way to normalise a frozen field.
        object.__setattr__(self, "weekly_hours", weekly)

        if not isinstance(self.overrides, Mapping):
            raise ValueError("overrides must be a mapping of date -> windows")
        overrides: dict[date, tuple[LocalWindow, ...]] = {}
        for day, windows in self.overrides.items():
            # datetime is a date subclass, but a datetime key would never match a date lookup.
            if not isinstance(day, date) or isinstance(day, datetime):
                raise ValueError(f"override keys must be dates, got {day!r}")
            overrides[day] = _windows(windows, f"overrides[{day.isoformat()}]")
        object.__setattr__(self, "overrides", MappingProxyType(overrides))

        if whole_seconds(self.duration, "duration") <= 0:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.step is not None and whole_seconds(self.step, "step") <= 0:
            raise ValueError(f"step must be positive, got {self.step}")
        for name in ("buffer_before", "buffer_after", "minimum_notice"):
            value: timedelta = getattr(self, name)
            if whole_seconds(value, name) < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        for name in ("max_advance_days", "daily_cap"):
            limit: object = getattr(self, name)
            if limit is not None and (not _is_int(limit) or limit < 0):
                raise ValueError(f"{name} must be None or a non-negative int, got {limit!r}")

    @property
    def effective_step(self) -> timedelta:
        return self.duration if self.step is None else self.step

    def windows_on(self, day: date) -> tuple[LocalWindow, ...]:
        """The windows that start on local date `day` (an override replaces the weekday)."""
        found = self.overrides.get(day)
        return self.weekly_hours[day.weekday()] if found is None else found
