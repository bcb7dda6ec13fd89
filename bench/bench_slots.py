"""Benchmark of the pure slot engine (`service.slots.compute_slots`).

Run from the repository root:

    python bench/bench_slots.py [--json PATH] [--repeat N]

Input: a 62-day range in America/New_York, weekdays 09:00-12:00 and 13:00-17:00, Saturday
09:00-12:00, 30-minute slots, and 500 / 5,000 / 50,000 busy intervals of 15-120 minutes placed
at random (fixed seed) inside the 62 days. Reports the median wall time of compute_slots over
several runs, with the engine's wall-time cache warm (repeated queries) and cold. Prints a
table and then the same figures as one JSON object; makes no assertions.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from service.slots import Interval, LocalWindow, SlotRules, compute_slots  # noqa: E402
from service.slots.zones import wall_to_epoch  # noqa: E402

SEED = 20260301
TIME_ZONE = "America/New_York"
RANGE_START = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)  # local midnight, EST
RANGE_DAYS = 62
BUSY_SIZES = (500, 5_000, 50_000)
DEFAULT_REPEATS = {500: 30, 5_000: 30, 50_000: 10}


def build_rules() -> SlotRules:
    weekday = (LocalWindow.between("09:00", "12:00"), LocalWindow.between("13:00", "17:00"))
    saturday = (LocalWindow.between("09:00", "12:00"),)
    return SlotRules(
        time_zone=TIME_ZONE,
        weekly_hours=(weekday, weekday, weekday, weekday, weekday, saturday, ()),
        duration=timedelta(minutes=30),
    )


def build_busy(count: int, rng: random.Random) -> list[Interval]:
    span_minutes = RANGE_DAYS * 24 * 60
    busy = []
    for _ in range(count):
        length = rng.randint(15, 120)
        start = RANGE_START + timedelta(minutes=rng.randrange(span_minutes - length))
        busy.append(Interval(start, start + timedelta(minutes=length)))
    return busy


def run(repeat_override: int | None) -> list[dict[str, float | int]]:
    rules = build_rules()
    range_end = RANGE_START + timedelta(days=RANGE_DAYS)
    now = RANGE_START - timedelta(days=1)
    rows: list[dict[str, float | int]] = []
    for count in BUSY_SIZES:
        busy = build_busy(count, random.Random(SEED + count))
        repeats = repeat_override or DEFAULT_REPEATS[count]
        # One untimed warm-up run also supplies the candidate and slot counts.
        result = compute_slots(
            rules, range_start=RANGE_START, range_end=range_end, now=now, busy=busy
        )
        timings = []
        for _ in range(repeats):
            began = time.perf_counter()
            compute_slots(rules, range_start=RANGE_START, range_end=range_end, now=now, busy=busy)
            timings.append(time.perf_counter() - began)
        # The engine caches local-wall-time conversions across calls; "cold" clears that cache
        # first, as for the first query about a business's dates after a restart.
        cold = []
        for _ in range(repeats):
            wall_to_epoch.cache_clear()
            began = time.perf_counter()
            compute_slots(rules, range_start=RANGE_START, range_end=range_end, now=now, busy=busy)
            cold.append(time.perf_counter() - began)
        rows.append(
            {
                "busy_intervals": count,
                "candidates": result.candidates,
                "slots": len(result.slots),
                "runs": repeats,
                "median_ms": round(statistics.median(timings) * 1000, 3),
                "min_ms": round(min(timings) * 1000, 3),
                "cold_median_ms": round(statistics.median(cold) * 1000, 3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the JSON figures to this file")
    parser.add_argument("--repeat", type=int, help="runs per size (default 30; 10 for 50,000)")
    args = parser.parse_args()

    rows = run(args.repeat)
    header = f"{'busy intervals':>14}  {'candidates':>10}  {'slots':>6}  {'runs':>4}  "
    print(header + f"{'median ms':>9}  {'min ms':>7}  {'cold median ms':>14}")
    for row in rows:
        print(
            f"{row['busy_intervals']:>14,}  {row['candidates']:>10}  {row['slots']:>6}  "
            f"{row['runs']:>4}  {row['median_ms']:>9.3f}  {row['min_ms']:>7.3f}  "
            f"{row['cold_median_ms']:>14.3f}"
        )
    report = {
        "benchmark": "service.slots.compute_slots",
        "python": sys.version.split()[0],
        "time_zone": TIME_ZONE,
        "range_days": RANGE_DAYS,
        "seed": SEED,
        "results": rows,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
