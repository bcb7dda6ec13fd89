"""Time-zone lookup and exact conversions between datetimes and epoch seconds.

Rules enforced here:

* A zone name is an IANA key that `zoneinfo` can load (the `tzdata` package supplies the
  database where the OS has none); anything else is a ``ValueError``.
* Instants must be timezone-aware; a naive datetime is a ``ValueError``.
* Conversions to epoch numbers are exact: microseconds are never lost to float rounding.
* A local wall time is read with ``fold=0`` (see `wall_to_epoch`).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "EPOCH",
    "UTC",
    "ceil_seconds",
    "floor_seconds",
    "get_zone",
    "local_date",
    "micros",
    "require_aware",
    "wall_to_epoch",
    "whole_seconds",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MICROSECOND = timedelta(microseconds=1)
_US_PER_S = 1_000_000
# Clamp instants before asking for their local date so that a range reaching datetime.min or
# datetime.max (plus the engine's few days of margin) stays inside the representable years.
_FIRST_SAFE_EPOCH = (datetime(1, 1, 5, tzinfo=UTC) - EPOCH) // timedelta(seconds=1)
_LAST_SAFE_EPOCH = (datetime(9999, 12, 27, tzinfo=UTC) - EPOCH) // timedelta(seconds=1)


@lru_cache(maxsize=512)
def _load_zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def get_zone(name: str) -> ZoneInfo:
    """Return the cached `ZoneInfo` for an IANA name, or raise ``ValueError``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"time zone must be a non-empty IANA name, got {name!r}")
    try:
        return _load_zone(name)
    # zoneinfo reports a bad key as KeyError (unknown), ValueError (malformed) or OSError (a
    # directory such as "America"); callers only need to know the name is unusable.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def require_aware(value: datetime, what: str) -> None:
    """Raise ``ValueError`` unless `value` is a timezone-aware datetime."""
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")


def micros(instant: datetime) -> int:
    """Exact microseconds since the Unix epoch of an aware datetime."""
    return (instant - EPOCH) // _MICROSECOND


def floor_seconds(us: int) -> int:
    return us // _US_PER_S


def ceil_seconds(us: int) -> int:
    return -(-us // _US_PER_S)


def whole_seconds(value: timedelta, what: str) -> int:
    """Seconds in `value`, which must be a timedelta without a fractional second."""
    if not isinstance(value, timedelta):
        raise ValueError(f"{what} must be a timedelta, got {type(value).__name__}")
    if value.microseconds:
        raise ValueError(f"{what} must be a whole number of seconds, got {value}")
    return value.days * 86_400 + value.seconds


# Window edges repeat across calls (same zone, dates and opening minutes) and an uncached
# conversion costs microseconds, which adds up over a two-month range.
@lru_cache(maxsize=32_768)
def wall_to_epoch(zone: ZoneInfo, day: date, minute: int) -> int:
    """Epoch seconds of local wall time `day` 00:00 + `minute` minutes in `zone`.

    Minutes past 1440 roll into the following days. The wall time is read with fold=0: a time
    inside a spring-forward gap uses the offset in force before the change (so it lands later by
    the size of the gap) and a repeated fall-back time is its first occurrence.
    """
    local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minute)
    # tzdata offsets are whole seconds, so the float is an exact integer.
    return math.floor(local.timestamp())


def local_date(zone: ZoneInfo, epoch: int) -> date:
    """Local calendar date in `zone` of an instant given in epoch seconds."""
    clamped = min(max(epoch, _FIRST_SAFE_EPOCH), _LAST_SAFE_EPOCH)
    return datetime.fromtimestamp(clamped, zone).date()
