"""From an agent's settings and an event type to the slot engine's rules."""

from __future__ import annotations

from collections.abc import Iterable

from service.model import Availability, EventDefaults, EventType, Window
from service.slots import LocalWindow, SlotRules


def _windows(items: Iterable[Window]) -> tuple[LocalWindow, ...]:
    return tuple(LocalWindow(w.start_minute, w.end_minute) for w in items)


def slot_rules(
    availability: Availability, defaults: EventDefaults, event_type: EventType
) -> SlotRules:
    """The engine's rules for one agent and event type: the event type's length and buffers,
    the agent's defaults where the event type sets none."""
    return SlotRules(
        time_zone=availability.time_zone,
        weekly_hours=tuple(_windows(day) for day in availability.weekly_hours),
        overrides={o.day: _windows(o.windows) for o in availability.date_overrides},
        duration=event_type.duration or defaults.duration,
        buffer_before=event_type.buffer_before or defaults.buffer_before,
        buffer_after=event_type.buffer_after or defaults.buffer_after,
        step=defaults.slot_step or None,
        minimum_notice=availability.minimum_notice,
        max_advance_days=availability.max_advance_days or None,
        daily_cap=availability.daily_cap or None,
    )
