"""Example tests: one or more per rule of the slot engine (see service/slots/__init__.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from service.slots import (
    Interval,
    LocalWindow,
    SlotRejection,
    SlotResult,
    SlotRules,
    compute_slots,
    windows_for_date,
)

from .strategies import LONG_AGO, rules_for, utc, win

NY = "America/New_York"
NEW_YORK = ZoneInfo(NY)
MIN = timedelta(minutes=1)


def starts(result: SlotResult) -> list[datetime]:
    return [slot.start for slot in result.slots]


def query(
    rules: SlotRules, start: datetime, end: datetime, now: datetime = LONG_AGO, **kwargs: Any
) -> SlotResult:
    return compute_slots(rules, range_start=start, range_end=end, now=now, **kwargs)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK, fold=fold)


def whole_day_ny(day: date) -> tuple[datetime, datetime]:
    """Local midnight to the next local midnight in New York."""
    return ny(day.year, day.month, day.day), ny(day.year, day.month, day.day) + timedelta(days=1)


# --- rule 1: local hours, absolute everything else -----------------------------------------------


def test_rule1_busy_and_range_in_other_zones_compare_as_instants() -> None:
    rules = rules_for(NY, win("09:00", "11:00"))
    berlin = ZoneInfo("Europe/Berlin")
    tokyo = ZoneInfo("Asia/Tokyo")
    # 09:30 New York (EDT) is 15:30 in Berlin (CEST).
    busy = [
        Interval(
            datetime(2026, 6, 2, 15, 30, tzinfo=berlin), datetime(2026, 6, 2, 16, 0, tzinfo=berlin)
        )
    ]
    result = query(
        rules,
        datetime(2026, 6, 2, 20, 0, tzinfo=tokyo),  # 07:00 New York
        datetime(2026, 6, 3, 2, 0, tzinfo=tokyo),  # 13:00 New York
        busy=busy,
    )
    assert starts(result) == [utc(2026, 6, 2, 13), utc(2026, 6, 2, 14), utc(2026, 6, 2, 14, 30)]
    assert all(slot.start.tzinfo is UTC and slot.end.tzinfo is UTC for slot in result.slots)
    assert all(slot.end - slot.start == timedelta(minutes=30) for slot in result.slots)


# --- rule 2: which windows a date has ------------------------------------------------------------


def test_rule2_weekly_hours_follow_the_weekday() -> None:
    monday = (win("09:00", "10:00"),)
    tuesday = (win("14:00", "15:00"),)
    rules = SlotRules(NY, (monday, tuesday, (), (), (), (), ()))
    result = query(rules, utc(2026, 6, 1), utc(2026, 6, 8))  # Monday 1 June .. Monday 8 June
    assert starts(result) == [
        utc(2026, 6, 1, 13),
        utc(2026, 6, 1, 13, 30),
        utc(2026, 6, 2, 18),
        utc(2026, 6, 2, 18, 30),
    ]


def test_rule2_override_replaces_the_day_and_empty_override_closes_it() -> None:
    rules = rules_for(
        NY,
        win("09:00", "10:00"),
        overrides={date(2026, 6, 2): (win("15:00", "16:00"),), date(2026, 6, 3): ()},
    )
    result = query(rules, utc(2026, 6, 2), utc(2026, 6, 5))
    assert starts(result) == [
        utc(2026, 6, 2, 19),
        utc(2026, 6, 2, 19, 30),
        utc(2026, 6, 4, 13),
        utc(2026, 6, 4, 13, 30),
    ]


def test_rule2_end_2400_is_next_midnight() -> None:
    rules = rules_for(NY, win("22:00", "24:00"), duration=timedelta(hours=1))
    result = query(rules, *whole_day_ny(date(2026, 6, 2)))
    # 22:00 and 23:00 EDT on 2 June; nothing on 1 June is inside the range.
    assert utc(2026, 6, 3, 2) in starts(result)
    assert utc(2026, 6, 3, 3) in starts(result)
    assert utc(2026, 6, 3, 4) not in starts(result)


def test_rule2_window_crossing_midnight_runs_into_next_day() -> None:
    rules = rules_for(
        NY,
        overrides={date(2026, 6, 2): (win("22:00", "02:00"),), date(2026, 6, 3): ()},
        duration=timedelta(hours=1),
    )
    result = query(rules, utc(2026, 6, 2), utc(2026, 6, 5))
    # 22:00, 23:00 on the 2nd, 00:00, 01:00 on the 3rd (EDT = UTC-4).
    assert starts(result) == [
        utc(2026, 6, 3, 2),
        utc(2026, 6, 3, 3),
        utc(2026, 6, 3, 4),
        utc(2026, 6, 3, 5),
    ]


def test_rule2_override_never_cuts_previous_days_overnight_window() -> None:
    rules = rules_for(
        NY, win("22:00", "02:00"), overrides={date(2026, 6, 3): ()}, duration=timedelta(hours=1)
    )
    result = query(rules, utc(2026, 6, 3, 4), utc(2026, 6, 3, 12))  # 00:00-08:00 on the 3rd
    # The 3rd is closed, but the 2nd's window still runs to 02:00 on the 3rd.
    assert starts(result) == [utc(2026, 6, 3, 4), utc(2026, 6, 3, 5)]


def test_rule2_end_equal_to_start_is_no_window() -> None:
    rules = rules_for(NY, win("09:00", "09:00"))
    result = query(rules, utc(2026, 6, 1), utc(2026, 6, 8))
    assert result.slots == ()
    assert result.candidates == 0


def test_rule2_windows_are_not_merged() -> None:
    # Merged, 09:00-10:30 would give only 09:00 with 60-minute slots on a 60-minute step.
    rules = rules_for(
        NY, win("09:00", "10:00"), win("09:30", "10:30"), duration=timedelta(minutes=60)
    )
    result = query(rules, *whole_day_ny(date(2026, 6, 2)))
    assert starts(result) == [utc(2026, 6, 2, 13), utc(2026, 6, 2, 13, 30)]


def test_windows_for_date_returns_absolute_windows_in_utc() -> None:
    rules = rules_for(NY, win("22:00", "02:00"), win("09:00", "09:00"))
    assert windows_for_date(rules, date(2026, 6, 2)) == (
        Interval(utc(2026, 6, 3, 2), utc(2026, 6, 3, 6)),
    )


# --- rule 3: DST gaps and repeats ----------------------------------------------------------------


def on_day(zone: str, day: date, *windows: LocalWindow, **options: Any) -> list[datetime]:
    """Slots of the override windows on `day` only, over a range that surely covers them."""
    rules = rules_for(zone, overrides={day: tuple(windows)}, **options)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
    return starts(query(rules, start, start + timedelta(days=3)))


def test_rule3_new_york_spring_forward_window_spanning_the_gap() -> None:
    # 2026-03-08: 02:00 EST -> 03:00 EDT. 01:00 EST is 06:00Z, 04:00 EDT is 08:00Z.
    assert on_day(NY, date(2026, 3, 8), win("01:00", "04:00")) == [
        utc(2026, 3, 8, 6),
        utc(2026, 3, 8, 6, 30),
        utc(2026, 3, 8, 7),
        utc(2026, 3, 8, 7, 30),
    ]


def test_rule3_new_york_nonexistent_start_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist; read as EST it is 07:30Z = 03:30 EDT.
    result = on_day(NY, date(2026, 3, 8), win("02:30", "05:00"))
    assert result == [utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8), utc(2026, 3, 8, 8, 30)]
    assert result[0].astimezone(NEW_YORK).strftime("%H:%M") == "03:30"


def test_rule3_window_collapsed_by_the_gap_is_empty() -> None:
    # 02:30 -> 07:30Z but 03:00 EDT -> 07:00Z: the window is inverted and offers nothing.
    assert on_day(NY, date(2026, 3, 8), win("02:30", "03:00"), duration=timedelta(minutes=15)) == []


def test_rule3_window_entirely_inside_the_gap_is_read_with_the_old_offset() -> None:
    # Both ends read as EST: 02:00-02:30 EST = 07:00-07:30Z = 03:00-03:30 EDT.
    assert on_day(NY, date(2026, 3, 8), win("02:00", "02:30")) == [utc(2026, 3, 8, 7)]


def test_rule3_new_york_fall_back_day_is_25_hours_of_window() -> None:
    # 2026-11-01: 02:00 EDT -> 01:00 EST. 00:00 EDT = 04:00Z, 03:00 EST = 08:00Z.
    assert on_day(NY, date(2026, 11, 1), win("00:00", "03:00"), duration=timedelta(hours=1)) == [
        utc(2026, 11, 1, 4),
        utc(2026, 11, 1, 5),
        utc(2026, 11, 1, 6),
        utc(2026, 11, 1, 7),
    ]


def test_rule3_new_york_repeated_time_is_first_occurrence() -> None:
    # 01:30 EDT (first) = 05:30Z; 02:00 EST = 07:00Z.
    assert on_day(NY, date(2026, 11, 1), win("01:30", "02:00")) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6),
        utc(2026, 11, 1, 6, 30),
    ]
    # 01:00-01:30 is the first pass through that half hour only.
    assert on_day(NY, date(2026, 11, 1), win("01:00", "01:30")) == [utc(2026, 11, 1, 5)]


def test_rule3_berlin_spring_forward() -> None:
    # 2026-03-29: 02:00 CET -> 03:00 CEST. 01:00 CET = 00:00Z, 04:00 CEST = 02:00Z.
    berlin = "Europe/Berlin"
    day = date(2026, 3, 29)
    assert on_day(berlin, day, win("01:00", "04:00"), duration=timedelta(hours=1)) == [
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1),
    ]
    # 02:30 read as CET = 01:30Z = 03:30 CEST.
    assert on_day(berlin, day, win("02:30", "04:00")) == [utc(2026, 3, 29, 1, 30)]


def test_rule3_berlin_fall_back() -> None:
    # 2026-10-25: 03:00 CEST -> 02:00 CET. 02:00 (first, CEST) = 00:00Z; 03:00 CET = 02:00Z.
    assert on_day(
        "Europe/Berlin", date(2026, 10, 25), win("02:00", "03:00"), duration=timedelta(hours=1)
    ) == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1)]


def test_rule3_half_and_three_quarter_hour_offsets() -> None:
    day = date(2026, 6, 1)
    # Kolkata is UTC+05:30, Kathmandu UTC+05:45.
    assert on_day("Asia/Kolkata", day, win("09:00", "10:00")) == [
        utc(2026, 6, 1, 3, 30),
        utc(2026, 6, 1, 4),
    ]
    assert on_day("Asia/Kathmandu", day, win("09:00", "10:00")) == [
        utc(2026, 6, 1, 3, 15),
        utc(2026, 6, 1, 3, 45),
    ]


def test_rule3_adelaide_dst_end_and_start() -> None:
    adelaide = "Australia/Adelaide"
    # 2026-04-05: 03:00 ACDT (+10:30) -> 02:00 ACST (+09:30).
    # 01:00 ACDT = 14:30Z on the 4th; 04:00 ACST = 18:30Z: four one-hour slots.
    assert on_day(
        adelaide, date(2026, 4, 5), win("01:00", "04:00"), duration=timedelta(hours=1)
    ) == [
        utc(2026, 4, 4, 14, 30),
        utc(2026, 4, 4, 15, 30),
        utc(2026, 4, 4, 16, 30),
        utc(2026, 4, 4, 17, 30),
    ]
    # 2026-10-04: 02:00 ACST -> 03:00 ACDT. 02:30 read as ACST = 17:00Z = 03:30 ACDT;
    # 04:00 ACDT = 17:30Z.
    assert on_day(adelaide, date(2026, 10, 4), win("02:30", "04:00")) == [utc(2026, 10, 3, 17)]


# --- rule 4: the grid ----------------------------------------------------------------------------


def test_rule4_grid_is_anchored_at_window_start_not_range_or_now() -> None:
    rules = rules_for(NY, win("09:10", "11:00"))
    # Range starts at 09:20 and now is 09:25: the grid stays 09:10, 09:40, 10:10.
    result = query(rules, ny(2026, 6, 2, 9, 20), ny(2026, 6, 2, 23), now=ny(2026, 6, 2, 9, 25))
    assert starts(result) == [utc(2026, 6, 2, 13, 40), utc(2026, 6, 2, 14, 10)]
    assert result.rejected[SlotRejection.NOTICE] == 0


def test_rule4_step_shorter_than_duration() -> None:
    rules = rules_for(
        NY, win("09:00", "11:00"), duration=timedelta(hours=1), step=timedelta(minutes=15)
    )
    result = query(rules, *whole_day_ny(date(2026, 6, 2)))
    assert starts(result) == [ny(2026, 6, 2, 9) + k * 15 * MIN for k in range(5)]
    assert all(slot.end - slot.start == timedelta(hours=1) for slot in result.slots)


def test_rule4_step_longer_than_duration() -> None:
    rules = rules_for(NY, win("09:00", "11:00"), step=timedelta(minutes=45))
    result = query(rules, *whole_day_ny(date(2026, 6, 2)))
    assert starts(result) == [ny(2026, 6, 2, 9), ny(2026, 6, 2, 9, 45), ny(2026, 6, 2, 10, 30)]


# --- rule 5: filters -----------------------------------------------------------------------------

DAY = date(2026, 6, 2)
WEEK_RULES = rules_for(NY, win("09:00", "11:00"))


def day_query(rules: SlotRules = WEEK_RULES, **kwargs: Any) -> SlotResult:
    return query(rules, *whole_day_ny(DAY), **kwargs)


def at(hour: int, minute: int = 0) -> datetime:
    return ny(2026, 6, 2, hour, minute)


def test_rule5_touching_busy_is_fine_overlapping_is_not() -> None:
    result = day_query(busy=[Interval(at(9, 30), at(10))])
    assert starts(result) == [at(9), at(10), at(10, 30)]
    assert result.rejected[SlotRejection.BUSY] == 1


def test_rule5_zero_length_and_inverted_busy_are_ignored() -> None:
    result = day_query(busy=[Interval(at(9, 45), at(9, 45)), Interval(at(10, 15), at(9, 15))])
    assert starts(result) == [at(9), at(9, 30), at(10), at(10, 30)]


def test_rule5_one_microsecond_of_overlap_blocks() -> None:
    tiny = timedelta(microseconds=1)
    result = day_query(
        busy=[Interval(at(9, 30) - tiny, at(9, 30)), Interval(at(11) - tiny, at(11))]
    )
    assert starts(result) == [at(9, 30), at(10)]


def test_rule5_buffer_after_pads_the_end() -> None:
    rules = rules_for(NY, win("09:00", "11:00"), buffer_after=timedelta(minutes=10))
    result = day_query(rules, busy=[Interval(at(10, 5), at(10, 10))])
    # 09:30 is padded to 10:10 and 10:00 overlaps directly; 09:00 ends its padding at 09:40.
    assert starts(result) == [at(9), at(10, 30)]


def test_rule5_buffer_before_pads_the_start() -> None:
    rules = rules_for(NY, win("09:00", "11:00"), buffer_before=timedelta(minutes=15))
    # 09:00 padded from 08:45 overlaps 08:45-08:50.
    assert starts(day_query(rules, busy=[Interval(at(8, 45), at(8, 50))])) == [
        at(9, 30),
        at(10),
        at(10, 30),
    ]
    # Busy time ending exactly where the padding starts only touches it.
    assert starts(day_query(rules, busy=[Interval(at(8, 40), at(8, 45))]))[0] == at(9)


def test_rule5_buffers_ignore_window_edges() -> None:
    rules = rules_for(
        NY,
        win("09:00", "10:00"),
        buffer_before=timedelta(minutes=30),
        buffer_after=timedelta(minutes=30),
    )
    assert starts(day_query(rules)) == [at(9), at(9, 30)]


def test_rule5_minimum_notice() -> None:
    rules = rules_for(NY, win("09:00", "11:00"), minimum_notice=timedelta(minutes=30))
    assert starts(day_query(rules, now=at(8, 40))) == [at(9, 30), at(10), at(10, 30)]
    # Exactly now + notice is allowed, a microsecond later is not.
    assert starts(day_query(rules, now=at(8, 30)))[0] == at(9)
    late = day_query(rules, now=at(8, 30) + timedelta(microseconds=1))
    assert starts(late)[0] == at(9, 30)
    assert late.rejected[SlotRejection.NOTICE] == 1


def test_rule5_max_advance_uses_todays_local_date() -> None:
    rules = rules_for(NY, win("09:00", "10:00"), max_advance_days=1)
    now = ny(2026, 6, 1, 23, 30)  # already 2 June in UTC
    result = query(rules, utc(2026, 6, 1), utc(2026, 6, 6), now=now)
    # Today is 1 June locally, so the limit is midnight starting 3 June (local).
    assert starts(result) == [ny(2026, 6, 2, 9), ny(2026, 6, 2, 9, 30)]
    assert result.rejected == {
        SlotRejection.NOTICE: 2,
        SlotRejection.ADVANCE: 6,
        SlotRejection.BUSY: 0,
        SlotRejection.DAILY_CAP: 0,
    }
    zero = rules_for(
        NY,
        win("09:00", "10:00"),
        win("23:45", "24:00"),
        max_advance_days=0,
        duration=timedelta(minutes=15),
    )
    assert starts(query(zero, utc(2026, 6, 1), utc(2026, 6, 6), now=ny(2026, 6, 1, 12))) == [
        ny(2026, 6, 1, 23, 45)
    ]


def test_rule5_max_advance_limit_is_exclusive_at_local_midnight() -> None:
    rules = rules_for(NY, win("00:00", "01:00"), max_advance_days=1)
    result = query(rules, ny(2026, 6, 1), ny(2026, 6, 5), now=ny(2026, 6, 1, 0, 10))
    # Today is 1 June: 2 June 00:00 and 00:30 are in, 3 June 00:00 (the limit itself) is not.
    assert starts(result) == [ny(2026, 6, 1, 0, 30), ny(2026, 6, 2), ny(2026, 6, 2, 0, 30)]
    assert result.rejected[SlotRejection.ADVANCE] == 4


def test_rule5_daily_cap_reads_existing_counts_per_local_day() -> None:
    rules = rules_for(NY, win("22:00", "02:00"), duration=timedelta(hours=1), daily_cap=2)
    counts = {date(2026, 6, 3): 2, date(2026, 6, 2): 1}
    result = query(rules, ny(2026, 6, 2), ny(2026, 6, 3, 12), day_counts=counts)
    # The window of the 2nd runs into the 3rd; its slots after midnight count for the 3rd,
    # which is full. The 2nd has one appointment of two, yet all four of its slots are offered:
    # the cap compares existing appointments only.
    assert starts(result) == [
        ny(2026, 6, 2, 0),
        ny(2026, 6, 2, 1),
        ny(2026, 6, 2, 22),
        ny(2026, 6, 2, 23),
    ]
    assert result.rejected[SlotRejection.DAILY_CAP] == 2


def test_rule5_daily_cap_zero_closes_every_day() -> None:
    rules = rules_for(NY, win("09:00", "10:00"), daily_cap=0)
    result = day_query(rules)
    assert result.slots == ()
    assert result.rejected[SlotRejection.DAILY_CAP] == 2


def test_rule5_range_bounds_filter_but_do_not_count_as_rejections() -> None:
    result = query(WEEK_RULES, at(9, 30), at(10, 45))
    # 09:30 >= start and 10:00 + 30 min <= 10:45; 10:30 would end after the range.
    assert starts(result) == [at(9, 30), at(10)]
    assert result.candidates == 2
    exact = query(WEEK_RULES, at(9), at(10))
    assert starts(exact) == [at(9), at(9, 30)]


def test_rule5_empty_or_inverted_range_is_an_empty_result() -> None:
    for end in (at(9), at(8)):
        result = query(WEEK_RULES, at(9), end)
        assert result.slots == ()
        assert result.candidates == 0
        assert set(result.rejected.values()) == {0}


def test_rule5_first_failing_filter_is_counted() -> None:
    rules = rules_for(NY, win("09:00", "11:00"), minimum_notice=timedelta(hours=1), daily_cap=1)
    result = day_query(
        rules,
        now=at(8, 30),
        busy=[Interval(at(9), at(10))],
        day_counts={DAY: 1},
    )
    # 09:00 fails notice (and busy), 09:30 busy, 10:00 and 10:30 the cap.
    assert result.rejected == {
        SlotRejection.NOTICE: 1,
        SlotRejection.ADVANCE: 0,
        SlotRejection.BUSY: 1,
        SlotRejection.DAILY_CAP: 2,
    }
    assert result.candidates == 4


# --- rule 6: output ------------------------------------------------------------------------------


def test_rule6_duplicate_starts_from_overlapping_windows_are_merged() -> None:
    rules = rules_for(NY, win("09:00", "11:00"), win("10:00", "11:00"))
    result = day_query(rules)
    assert starts(result) == [at(9), at(9, 30), at(10), at(10, 30)]
    assert result.candidates == 4


def test_rule6_slots_are_sorted_and_in_utc() -> None:
    rules = rules_for(NY, win("15:00", "16:00"), win("09:00", "10:00"))
    result = query(rules, utc(2026, 6, 1), utc(2026, 6, 4))
    assert starts(result) == sorted(starts(result))
    assert all(slot.start.utcoffset() == timedelta(0) for slot in result.slots)


# --- invalid calls -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["range_start", "range_end", "now"])
def test_naive_datetimes_are_rejected(field: str) -> None:
    kwargs: dict[str, Any] = {"range_start": at(0), "range_end": at(23), "now": LONG_AGO}
    kwargs[field] = kwargs[field].replace(tzinfo=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_slots(WEEK_RULES, **kwargs)


@pytest.mark.parametrize("zone", [NY, "Asia/Tokyo", "Pacific/Kiritimati"])
def test_ranges_at_the_ends_of_the_calendar_do_not_overflow(zone: str) -> None:
    rules = rules_for(zone, win("00:00", "24:00"), win("22:00", "02:00"))
    first = datetime.min.replace(tzinfo=UTC)
    last = datetime.max.replace(tzinfo=UTC)
    early = query(rules, first, first + timedelta(days=4), now=first)
    late = query(rules, last - timedelta(days=4), last, now=first)
    # The first and last couple of days of the calendar are not examined; the rest works.
    assert early.slots
    assert late.slots


def test_busy_in_a_fixed_offset_zone() -> None:
    minus_four = timezone(timedelta(hours=-4))
    busy = [
        Interval(
            datetime(2026, 6, 2, 9, 0, tzinfo=minus_four),
            datetime(2026, 6, 2, 9, 30, tzinfo=minus_four),
        )
    ]
    assert starts(day_query(busy=busy)) == [at(9, 30), at(10), at(10, 30)]
