"""Differential test: the fast engine against the naive minute-by-minute reference."""

from __future__ import annotations

from datetime import date
from typing import Any

from hypothesis import example, given, settings

from service.slots import Interval, SlotRejection, compute_slots

from .reference import reference_slots
from .strategies import BASE_SETTINGS, rules_for, scenarios, utc, win


@settings(BASE_SETTINGS, max_examples=250)
@given(scenarios(max_range_minutes=1440 + 720))
@example(
    {
        "rules": rules_for("America/New_York", win("01:00", "04:00"), win("23:00", "02:30")),
        "range_start": utc(2026, 3, 7),
        "range_end": utc(2026, 3, 9, 12),
        "now": utc(2026, 3, 1),
        "busy": [Interval(utc(2026, 3, 8, 7), utc(2026, 3, 8, 7, 10))],
        "day_counts": {},
    }
)
@example(  # the advance limit falls exactly on a candidate at local midnight
    {
        "rules": rules_for(
            "America/New_York", win("00:00", "01:00"), win("23:00", "24:00"), max_advance_days=1
        ),
        "range_start": utc(2026, 6, 1),
        "range_end": utc(2026, 6, 5),
        "now": utc(2026, 6, 1, 16),
        "busy": [],
        "day_counts": {},
    }
)
@example(  # the cap is read per local date of the slot, across midnight
    {
        "rules": rules_for("Asia/Kathmandu", win("22:00", "02:00"), daily_cap=1),
        "range_start": utc(2026, 6, 1),
        "range_end": utc(2026, 6, 5),
        "now": utc(2026, 5, 1),
        "busy": [],
        "day_counts": {date(2026, 6, 2): 1, date(2026, 6, 3): 0, date(2026, 6, 4): 2},
    }
)
def test_engine_matches_reference(scenario: dict[str, Any]) -> None:
    result = compute_slots(**scenario)
    expected_starts, expected_candidates, expected_rejected = reference_slots(**scenario)
    assert [slot.start for slot in result.slots] == expected_starts
    assert result.candidates == expected_candidates
    assert dict(result.rejected) == expected_rejected
    assert set(result.rejected) == set(SlotRejection)
