"""reusable_until: a result computed at one now is the answer at every later now before it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.slots import SlotRules, compute_slots, reusable_until

from .strategies import BASE_SETTINGS, rules_for, scenarios, utc, win

PROPERTY = settings(BASE_SETTINGS, max_examples=200)


@PROPERTY
@given(scenarios(), st.integers(0, 4 * 86_400 * 1_000_000), st.booleans())
def test_the_answer_holds_until_reusable_until(
    scenario: dict[str, Any], later_us: int, to_the_edge: bool
) -> None:
    rules: SlotRules = scenario["rules"]
    first = compute_slots(**scenario)
    until = reusable_until(rules, first, scenario["now"], scenario["range_end"])
    assume(until is not None)
    assert until is not None
    later = scenario["now"] + timedelta(microseconds=later_us)
    if to_the_edge:
        later = until - timedelta(microseconds=1)  # the last instant it claims to hold
    assume(scenario["now"] <= later < until)
    again = compute_slots(**{**scenario, "now": later})
    assert again.slots == first.slots


@PROPERTY
@given(scenarios())
def test_at_reusable_until_the_earliest_slot_is_gone(scenario: dict[str, Any]) -> None:
    rules: SlotRules = scenario["rules"]
    first = compute_slots(**scenario)
    until = reusable_until(rules, first, scenario["now"], scenario["range_end"])
    assume(until is not None)
    assert until is not None
    # One whole second past the bound (the engine rounds now + notice up to whole seconds).
    again = compute_slots(**{**scenario, "now": until + timedelta(seconds=1)})
    assert first.slots[0] not in again.slots


def test_nothing_empty_or_near_the_advance_edge_is_reused() -> None:
    now = utc(2026, 11, 23, 17)
    rules = rules_for("UTC", win("09:00", "17:00"), max_advance_days=3)
    near = compute_slots(
        rules, range_start=now + timedelta(days=2), range_end=now + timedelta(days=3), now=now
    )
    assert near.slots
    assert reusable_until(rules, near, now, now + timedelta(days=3)) is None
    far_rules = rules_for("UTC", win("09:00", "17:00"), max_advance_days=30)
    far = compute_slots(
        far_rules, range_start=now + timedelta(days=2), range_end=now + timedelta(days=3), now=now
    )
    assert reusable_until(far_rules, far, now, now + timedelta(days=3)) == (
        far.slots[0].start - far_rules.minimum_notice
    )
    closed = rules_for("UTC", max_advance_days=30)
    empty = compute_slots(closed, range_start=now, range_end=now + timedelta(days=1), now=now)
    assert reusable_until(closed, empty, now, now + timedelta(days=1)) is None
