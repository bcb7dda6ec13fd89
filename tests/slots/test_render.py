"""to_local and voice_label."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from service.slots import to_local, voice_label

NY = "America/New_York"


def test_voice_label_example() -> None:
    instant = datetime(2026, 12, 1, 14, 0, tzinfo=ZoneInfo(NY))
    assert voice_label(instant, NY) == "Tuesday, December 1 at 2:00 PM"
    assert voice_label(instant.astimezone(UTC), NY) == "Tuesday, December 1 at 2:00 PM"


@pytest.mark.parametrize(
    ("hour", "minute", "spoken"),
    [
        (0, 0, "12:00 AM"),
        (0, 30, "12:30 AM"),
        (9, 0, "9:00 AM"),
        (9, 5, "9:05 AM"),
        (11, 59, "11:59 AM"),
        (12, 0, "12:00 PM"),
        (13, 15, "1:15 PM"),
        (23, 45, "11:45 PM"),
    ],
)
def test_voice_label_clock(hour: int, minute: int, spoken: str) -> None:
    instant = datetime(2026, 3, 9, hour, minute, tzinfo=ZoneInfo(NY))
    assert voice_label(instant, NY) == f"Monday, March 9 at {spoken}"


def test_voice_label_renders_in_the_callers_zone() -> None:
    instant = datetime(2026, 6, 30, 22, 30, tzinfo=UTC)
    assert voice_label(instant, "UTC") == "Tuesday, June 30 at 10:30 PM"
    assert voice_label(instant, "Asia/Kathmandu") == "Wednesday, July 1 at 4:15 AM"
    assert voice_label(instant, "America/St_Johns") == "Tuesday, June 30 at 8:00 PM"


def test_to_local_keeps_the_instant() -> None:
    instant = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, the second pass
    local = to_local(instant, NY)
    # PEP 495: a fold=1 time never compares equal across zones, so compare as UTC.
    assert local.fold == 1
    assert local.astimezone(UTC) == instant
    assert (local.hour, local.minute, local.utcoffset()) == (1, 30, timedelta(hours=-5))
    assert to_local(instant.astimezone(timezone(timedelta(hours=3))), "UTC").tzinfo is not None


def test_render_rejects_naive_and_unknown() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        to_local(datetime(2026, 1, 1), NY)
    with pytest.raises(ValueError, match="time zone"):
        voice_label(datetime(2026, 1, 1, tzinfo=UTC), "Atlantis/Capital")
