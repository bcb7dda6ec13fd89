"""Busy-time overlap must be exact to the microsecond on both of the index's code paths.

Timestamps below 2**32 seconds use float arithmetic, others exact integers; both paths, and
negative timestamps, must give identical answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.slots import Interval, compute_slots

from .strategies import rules_for, win

TINY = timedelta(microseconds=1)
RULES = rules_for("UTC", win("09:00", "11:00"))


# 1960 and 2026 take the float path (1960 with negative timestamps); 1800 and 2200 are beyond
# 2**32 seconds from the epoch and take the exact path.
@pytest.mark.parametrize("year", [1800, 1960, 2026, 2200])
@pytest.mark.parametrize("with_empty_busy", [False, True])
def test_overlap_is_exact_to_the_microsecond(year: int, with_empty_busy: bool) -> None:
    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(year, 6, 2, hour, minute, tzinfo=UTC)

    busy = [
        Interval(at(9, 30) - TINY, at(9, 30)),  # last microsecond of the 09:00 slot
        Interval(at(10), at(10) + TINY),  # first microsecond of the 10:00 slot
        Interval(at(10, 30) + TINY, at(10, 30) + TINY),  # empty, inside 10:30
        Interval(at(11), at(11, 30)),  # touches the end of the 10:30 slot
    ]
    if with_empty_busy:
        # An inverted interval spanning the 09:30 slot forces the filtering branch.
        busy.append(Interval(at(10) - TINY, at(9, 30) + TINY))
    result = compute_slots(
        RULES,
        range_start=at(0),
        range_end=at(23),
        now=datetime(1700, 1, 1, tzinfo=UTC),
        busy=busy,
    )
    assert [slot.start for slot in result.slots] == [at(9, 30), at(10, 30)]
