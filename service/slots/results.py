"""Outputs of the slot engine: bookable slots and the accounting of filtered candidates.

Rules enforced here:

* A `Slot` is [start, end) with both ends timezone-aware at UTC offset zero and end > start.
* `SlotResult.slots` is sorted by start with unique starts; ``candidates`` counts the unique
  in-window starts inside the query range, and every candidate is either a slot or counted
  once in ``rejected`` under the first filter it failed, so
  ``candidates == len(slots) + sum(rejected.values())``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .zones import require_aware

__all__ = ["Slot", "SlotRejection", "SlotResult", "engine_slots"]

_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable appointment [start, end), both in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware(self.start, "Slot.start")
        require_aware(self.end, "Slot.end")
        if self.start.utcoffset() != _ZERO or self.end.utcoffset() != _ZERO:
            raise ValueError("Slot start and end must be in UTC")
        if self.end <= self.start:
            raise ValueError(f"Slot end {self.end} must be after start {self.start}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


_new_object = object.__new__
_set_field = object.__setattr__


def engine_slots(starts: Iterable[datetime], length: timedelta) -> tuple[Slot, ...]:
    """Slots for UTC starts the engine computed itself, skipping `Slot` validation.

    The engine's starts are UTC and its lengths positive by construction, and validation was
    more than half the cost of building a result with hundreds of slots.
    """
    slots = []
    for start in starts:
        slot = _new_object(Slot)
        _set_field(slot, "start", start)
        _set_field(slot, "end", start + length)
        slots.append(slot)
    return tuple(slots)


class SlotRejection(enum.Enum):
    """Why an in-window candidate inside the range was not offered (first failing filter)."""

    NOTICE = "notice"
    """It starts before now + minimum notice."""
    ADVANCE = "advance"
    """It starts at or after the end of the maximum advance window."""
    BUSY = "busy"
    """Its interval, padded by the buffers, overlaps busy time."""
    DAILY_CAP = "daily_cap"
    """Its local day already has daily_cap appointments."""


@dataclass(frozen=True, slots=True)
class SlotResult:
    """Slots plus enough accounting to explain an empty answer."""

    slots: tuple[Slot, ...]
    candidates: int
    rejected: Mapping[SlotRejection, int]
