"""Rendering slot instants for people: local datetimes and spoken labels.

Rules enforced here:

* Instants must be timezone-aware and zones loadable IANA names (``ValueError`` otherwise).
* Labels are built from fixed English tables, never from the process locale, so they read the
  same on every machine: "Tuesday, December 1 at 2:00 PM" (no leading zero on the day or hour;
  midnight is 12:00 AM and noon 12:00 PM). Seconds are not spoken.
"""

from __future__ import annotations

from datetime import datetime

from .zones import get_zone, require_aware

__all__ = ["to_local", "voice_label"]

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def to_local(instant: datetime, time_zone: str) -> datetime:
    """The same instant expressed in `time_zone` (for display in the caller's zone)."""
    require_aware(instant, "instant")
    return instant.astimezone(get_zone(time_zone))


def voice_label(instant: datetime, time_zone: str) -> str:
    """A spoken label such as "Tuesday, December 1 at 2:00 PM" in `time_zone`."""
    local = to_local(instant, time_zone)
    hour = local.hour % 12 or 12
    meridiem = "AM" if local.hour < 12 else "PM"
    return (
        f"{_WEEKDAYS[local.weekday()]}, {_MONTHS[local.month - 1]} {local.day} "
        f"at {hour}:{local.minute:02d} {meridiem}"
    )
