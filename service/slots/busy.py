"""Busy time as two sorted arrays, for fast "does [a, b) touch busy time?" questions.

Rules enforced here:

* Busy intervals are half-open: a candidate that only touches one (ends where it starts, or
  starts where it ends) does not overlap it.
* A busy interval with end <= start is no time and is ignored.
* Answers are exact to the microsecond even though the index is built from float timestamps
  (see `_FLOAT_EXACT_LIMIT`).

How it answers: for valid intervals, the number overlapping [a, b) is
``#{start < b} - #{end <= a}``, because every interval ending at or before a also starts before
b. So the index keeps the starts and the ends as two independently sorted arrays (no merging, no
pairing), and a query is two bisections.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import datetime
from itertools import compress, repeat
from operator import add, attrgetter, gt, not_, sub

from .rules import Interval
from .zones import ceil_seconds, floor_seconds, micros

__all__ = ["BusyIndex"]

# Below 2**32 seconds (year 2106) a float timestamp is within 0.5 microsecond of the exact
# value, so it never rounds onto a whole second it is not equal to, and two instants that differ
# by a microsecond stay ordered. Integer candidate starts therefore compare against it exactly.
# Beyond that the index falls back to exact integer arithmetic.
_FLOAT_EXACT_LIMIT = float(2**32)

_start_of = attrgetter("start")
_end_of = attrgetter("end")
_timestamp = datetime.timestamp


class BusyIndex:
    """Sorted busy starts and sorted busy ends (epoch seconds) of the valid busy intervals."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, starts: list[float], ends: list[float]) -> None:
        self._starts = starts
        self._ends = ends

    @classmethod
    def build(cls, busy: Sequence[Interval]) -> BusyIndex:
        if not busy:
            return cls([], [])
        # map() over C-level callables keeps the per-interval cost to two timestamp calls;
        # this conversion is most of the engine's time when busy lists are long.
        starts: list[float] = list(map(_timestamp, map(_start_of, busy)))
        ends: list[float] = list(map(_timestamp, map(_end_of, busy)))
        keep = list(map(gt, ends, starts))
        if all(keep):
            starts.sort()
            ends.sort()
            # Every value lies between the smallest start and the largest end.
            if starts[0] > -_FLOAT_EXACT_LIMIT and ends[-1] < _FLOAT_EXACT_LIMIT:
                return cls(starts, ends)
            return cls._build_exact(busy)
        # Dropping intervals on a float comparison is only safe when all values are in range.
        if min(starts) <= -_FLOAT_EXACT_LIMIT or max(ends) >= _FLOAT_EXACT_LIMIT:
            return cls._build_exact(busy)
        starts = sorted(compress(starts, keep))
        ends = sorted(compress(ends, keep))
        return cls(starts, ends)

    @classmethod
    def _build_exact(cls, busy: Sequence[Interval]) -> BusyIndex:
        starts: list[float] = []
        ends: list[float] = []
        for interval in busy:
            start, end = micros(interval.start), micros(interval.end)
            if end > start:
                # Candidates are whole seconds, so widening to whole seconds keeps every
                # overlap decision unchanged: a < end <=> a < ceil(end), start < b <=>
                # floor(start) < b for integers a and b.
                starts.append(floor_seconds(start))
                ends.append(ceil_seconds(end))
        starts.sort()
        ends.sort()
        return cls(starts, ends)

    def __len__(self) -> int:
        return len(self._starts)

    def free(self, starts: list[int], before: int, after: int) -> list[int]:
        """The `starts` whose padded span [s - before, s + after) overlaps no busy interval.

        `after` must be positive (it includes the appointment duration).
        """
        if not self._starts or not starts:
            return list(starts)
        # Float offsets turn the probes into floats (exact: integers below 2**53), and
        # float-to-float comparisons inside bisect are about twice as fast as int-to-float.
        overlapping = map(
            sub,
            map(bisect_left, repeat(self._starts), map(add, starts, repeat(float(after)))),
            map(bisect_right, repeat(self._ends), map(sub, starts, repeat(float(before)))),
        )
        return list(compress(starts, map(not_, overlapping)))
