"""Hypothesis properties of compute_slots on random rules, busy time and ranges near DST days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from service.slots import Interval, SlotRules, compute_slots

from .reference import reference_windows
from .strategies import BASE_SETTINGS, busy_lists, scenarios

PROPERTY = settings(BASE_SETTINGS, max_examples=120)


def _slots(scenario: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    result = compute_slots(**scenario)
    return [(slot.start, slot.end) for slot in result.slots]


@PROPERTY
@given(scenarios())
def test_output_is_sorted_unique_utc_and_fully_accounted(scenario: dict[str, Any]) -> None:
    rules: SlotRules = scenario["rules"]
    result = compute_slots(**scenario)
    starts = [slot.start for slot in result.slots]
    assert starts == sorted(set(starts))
    for slot in result.slots:
        assert slot.start.tzinfo is UTC
        assert slot.end - slot.start == rules.duration
        assert slot.start >= scenario["range_start"]
        assert slot.end <= scenario["range_end"]
    assert result.candidates == len(result.slots) + sum(result.rejected.values())


@PROPERTY
@given(scenarios())
def test_no_slot_overlaps_padded_busy_time(scenario: dict[str, Any]) -> None:
    rules: SlotRules = scenario["rules"]
    busy: list[Interval] = scenario["busy"]
    for start, end in _slots(scenario):
        padded_start, padded_end = start - rules.buffer_before, end + rules.buffer_after
        for interval in busy:
            if interval.end > interval.start:
                assert not (interval.start < padded_end and padded_start < interval.end)


@PROPERTY
@given(scenarios())
def test_every_slot_lies_on_the_grid_of_a_window(scenario: dict[str, Any]) -> None:
    rules: SlotRules = scenario["rules"]
    zone = ZoneInfo(rules.time_zone)
    step = rules.step or rules.duration
    for start, end in _slots(scenario):
        local_day = start.astimezone(zone).date()
        windows = [
            window
            for offset in (-2, -1, 0, 1)
            for window in reference_windows(rules, local_day + timedelta(days=offset))
        ]
        assert any(
            ws <= start and end <= we and (start - ws) % step == timedelta(0) for ws, we in windows
        )


@PROPERTY
@given(scenarios(), st.data())
def test_adding_busy_time_never_adds_slots(scenario: dict[str, Any], data: st.DataObject) -> None:
    before = set(_slots(scenario))
    extra = data.draw(busy_lists(scenario["range_start"] + timedelta(hours=12), max_size=4))
    after = set(_slots({**scenario, "busy": [*scenario["busy"], *extra]}))
    assert after <= before


@PROPERTY
@given(scenarios(), st.floats(0, 1))
def test_splitting_the_range_and_joining_equals_one_query(
    scenario: dict[str, Any], fraction: float
) -> None:
    # Rule 5 needs start >= range start and end <= range end, so a slot straddling the split
    # point belongs to neither half; every other slot is in exactly one half.
    range_start, range_end = scenario["range_start"], scenario["range_end"]
    split = range_start + (range_end - range_start) * fraction
    whole = _slots(scenario)
    left = _slots({**scenario, "range_end": split})
    right = _slots({**scenario, "range_start": split})
    assert left + right == [(s, e) for s, e in whole if not s < split < e]
    if all(not s < split < e for s, e in whole):
        assert left + right == whole
