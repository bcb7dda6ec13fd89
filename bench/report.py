"""The report: machine facts, ratios of ListSlots to the echo baseline, the table, the JSON.

Figures only: nothing here passes or fails a run against a target.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

Run = Mapping[str, Any]  # one bench.load JSON object, or {"error": ...} when the run failed
TARGETS = ("echo", "list_slots")


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
    }


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if not isinstance(numerator, int | float) or not isinstance(denominator, int | float):
        return None
    if denominator == 0:
        return None
    return round(numerator / denominator, 3)


def ratios(echo: Run, list_slots: Run) -> dict[str, float | None]:
    """ListSlots over echo: latency ratios above 1 and an rps ratio below 1 are the overhead."""
    return {
        "p50": _ratio(list_slots.get("p50_ms"), echo.get("p50_ms")),
        "p99": _ratio(list_slots.get("p99_ms"), echo.get("p99_ms")),
        "rps": _ratio(list_slots.get("rps"), echo.get("rps")),
    }


def _num(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def _run_row(concurrency: int, name: str, run: Run) -> str:
    if "error" in run:
        return f"{concurrency:>5}  {name:<10}  failed: {str(run['error']).splitlines()[0][:70]}"
    # A star marks a run the time limit cut short of the requested count.
    count = _num(run.get("count"), "d") + ("*" if run.get("timed_out") else "")
    return (
        f"{concurrency:>5}  {name:<10}  {count:>6}  "
        f"{_num(run.get('errors'), 'd'):>4}  {_num(run.get('p50_ms'), '.3f'):>8}  "
        f"{_num(run.get('p90_ms'), '.3f'):>8}  {_num(run.get('p99_ms'), '.3f'):>8}  "
        f"{_num(run.get('rps'), '.1f'):>8}"
    )


def render_table(report: Mapping[str, Any], slot_engine_table: str) -> str:
    machine = report["machine"]
    settings = report["settings"]
    warm = report["list_slots_warmup"]
    lines = [
        "gleam-calendar bench: ListSlots vs a bare grpc.aio echo server",
        f"{report['timestamp']}  {machine['platform']}  {machine['cpu_count']} CPUs  "
        f"Python {machine['python']}  grpcio {machine['grpcio']}",
        f"ListSlots {settings['date']} ({settings['business_time_zone']}), caller "
        f"{settings['caller_time_zone']}, max_results {settings['max_results']}: "
        f"{warm['slots']} slots, {report['payload_bytes']} bytes; echo returns "
        f"{report['payload_bytes']} bytes",
        f"per run: {settings['requests']} requests after {settings['warmup']} warm-up, "
        f"one channel, C concurrent workers, separate client process",
        "",
        f"{'conc':>5}  {'target':<10}  {'count':>6}  {'err':>4}  {'p50 ms':>8}  {'p90 ms':>8}  "
        f"{'p99 ms':>8}  {'rps':>8}",
    ]
    for result in report["results"]:
        concurrency = result["concurrency"]
        lines.append(_run_row(concurrency, "echo", result["echo"]))
        lines.append(_run_row(concurrency, "ListSlots", result["list_slots"]))
    if any(result[t].get("timed_out") for result in report["results"] for t in TARGETS):
        lines.append("  * stopped at the time limit before the requested count")
    lines += [
        "",
        "ratios, ListSlots / echo",
        f"{'conc':>5}  {'p50 ratio':>9}  {'p99 ratio':>9}  {'rps ratio':>9}",
    ]
    for result in report["results"]:
        r = result["ratios"]
        lines.append(
            f"{result['concurrency']:>5}  {_num(r['p50'], '.2f'):>9}  {_num(r['p99'], '.2f'):>9}  "
            f"{_num(r['rps'], '.3f'):>9}"
        )
    lines += ["", "slot engine (bench/bench_slots.py)"]
    slot_engine = report["slot_engine"]
    if "error" in slot_engine:
        lines.append(f"  not run: {slot_engine['error']}")
    else:
        lines.append(slot_engine_table.rstrip() or "  (no table printed)")
    return "\n".join(lines)


def write_json(report: Mapping[str, Any], path: Path) -> str:
    text = json.dumps(report, indent=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return text


def summarize_runs(
    concurrencies: Sequence[int], runs: Mapping[tuple[str, int], Run]
) -> list[dict[str, Any]]:
    """Per-concurrency entries: both runs side by side and their ratios."""
    results = []
    for concurrency in concurrencies:
        echo = runs[("echo", concurrency)]
        list_slots = runs[("list_slots", concurrency)]
        results.append(
            {
                "concurrency": concurrency,
                "echo": dict(echo),
                "list_slots": dict(list_slots),
                "ratios": ratios(echo, list_slots),
            }
        )
    return results
