"""The report: machine facts, ratios of ListSlots to the echo baseline, the table, the JSON.

Figures only: nothing here passes or fails a run; targets are labelled "met" or "missed".
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


def render_table_warm(report: Mapping[str, Any]) -> str:
    """The warm ListSlots vs echo table and ratios."""
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
    return "\n".join(lines)


def render_table(report: Mapping[str, Any], slot_engine_table: str) -> str:
    """The warm table followed by the slot-engine table (kept for existing callers)."""
    return render(report, slot_engine_table)


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


# Targets and the full report -----------------------------------------------------------------

ECHO_P99_RATIO_TARGET = 1.5
WARM_P99_C8_TARGET_MS = 10.0
COLD_P99_TARGET_MS = 95.0
BOOK_P99_TARGET_MS = 15.0


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "missed")


def targets(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and "met"/"missed" ("n/a" when not measured)."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, limit: str, met: bool | None) -> None:
        out.append({"target": name, "measured": value, "limit": limit, "verdict": _verdict(met)})

    for result in report.get("results", []):
        ratio = result["ratios"]["p99"]
        add(
            f"warm ListSlots p99 / echo p99, c={result['concurrency']}",
            ratio,
            f"<= {ECHO_P99_RATIO_TARGET}",
            None if ratio is None else ratio <= ECHO_P99_RATIO_TARGET,
        )
        if result["concurrency"] == 8:
            p99 = result["list_slots"].get("p99_ms")
            add(
                "warm ListSlots p99 at c=8 (ms)",
                p99,
                f"< {WARM_P99_C8_TARGET_MS:g}",
                None if p99 is None else p99 < WARM_P99_C8_TARGET_MS,
            )
    if "cold" in report:
        p99 = report["cold"].get("p99_ms")
        add(
            f"cold ListSlots p99, provider {report['cold']['provider_delay_ms']:g} ms (ms)",
            p99,
            f"<= {COLD_P99_TARGET_MS:g}",
            None if p99 is None else p99 <= COLD_P99_TARGET_MS,
        )
    if "single_flight" in report:
        calls = report["single_flight"]["provider_calls_for_day"]
        add(
            f"{report['single_flight']['callers']} concurrent cold ListSlots: provider calls",
            calls,
            "== 1",
            calls == 1,
        )
    for db, runs in report.get("book", {}).items():
        run = runs.get("c=8", {})
        p99 = run.get("p99_ms")
        add(
            f"Book p99 at c=8, {db} (ms)",
            p99,
            f"< {BOOK_P99_TARGET_MS:g}",
            None if p99 is None else p99 < BOOK_P99_TARGET_MS,
        )
    return out


def _latency_row(name: str, run: Mapping[str, Any]) -> str:
    if "skipped" in run:
        return f"  {name:<26}  skipped: {run['skipped']}"
    count = _num(run.get("count"), "d") + ("*" if run.get("timed_out") else "")
    return (
        f"  {name:<26}  {count:>6}  {_num(run.get('errors'), 'd'):>4}  "
        f"{_num(run.get('p50_ms'), '.3f'):>8}  {_num(run.get('p90_ms'), '.3f'):>8}  "
        f"{_num(run.get('p99_ms'), '.3f'):>8}  {_num(run.get('max_ms'), '.3f'):>8}  "
        f"{_num(run.get('rps'), '.1f'):>7}"
    )


LATENCY_HEADER = (
    f"  {'':<26}  {'count':>6}  {'err':>4}  {'p50 ms':>8}  {'p90 ms':>8}  {'p99 ms':>8}  "
    f"{'max ms':>8}  {'rps':>7}"
)


def _mib(kib: Any) -> str:
    return f"{kib / 1024:.1f} MiB" if isinstance(kib, int) else "-"


def render(report: Mapping[str, Any], slot_engine_table: str) -> str:
    """Every section that ran, then the targets."""
    machine = report["machine"]
    lines: list[str] = []
    if "results" in report:
        lines.append(render_table_warm(report))
    else:
        lines += [
            "gleam-calendar bench",
            f"{report['timestamp']}  {machine['platform']}  {machine['cpu_count']} CPUs  "
            f"Python {machine['python']}  grpcio {machine['grpcio']}",
        ]
    if "cold" in report:
        cold = report["cold"]
        lines += [
            "",
            f"cold ListSlots: Cal.com emulator over HTTP answering GET /v2/slots after "
            f"{cold['provider_delay_ms']:g} ms; every request a new (event type, UTC day); "
            f"concurrency {cold['concurrency']}, {cold['agents']} agents, "
            f"{cold['from_cache']} answers flagged from_cache",
            LATENCY_HEADER,
            _latency_row("cold ListSlots", cold),
        ]
    if "single_flight" in report:
        flight = report["single_flight"]
        lines += [
            "",
            f"single flight: {flight['callers']} concurrent ListSlots, one agent, uncached "
            f"{flight['date']}: {flight['ok']} ok, {flight['errors']} errors, "
            f"GET /v2/slots for that day: {flight['provider_calls_for_day']} "
            f"(all: {flight['provider_calls_total']}), wall {flight['wall_ms']:.1f} ms",
        ]
    if "book" in report:
        lines += [
            "",
            "Book: emulator answering at once, each Book a distinct free slot, latency at the "
            "client",
            LATENCY_HEADER,
        ]
        for db, runs in report["book"].items():
            if "skipped" in runs:
                lines.append(_latency_row(f"Book {db}", runs))
                continue
            for level, run in runs.items():
                if not isinstance(run, dict):
                    continue  # e.g. the PostgreSQL schema name
                lines.append(_latency_row(f"Book {level} {db}", run))
                if run.get("error_codes"):
                    lines.append(f"    errors: {run['error_codes']}")
    if "memory" in report:
        memory = report["memory"]
        done = memory["requests_done"]
        cut = f" (stopped at the {memory['time_limit_s']:g} s limit)" if memory["timed_out"] else ""
        lines += [
            "",
            f"memory: ListSlots over {memory['agents']} agents (built-in calendar), dates over "
            f"{memory['span_days']} days, CALENDAR_CACHE_MAX_DAYS={memory['cache_max_days']}, "
            f"concurrency {memory['concurrency']}",
            f"  ran {done} of {memory['requested']} requests"
            + cut
            + f" in {memory['wall_s']:.1f} s, {memory['errors']} errors, "
            f"{memory['from_cache']} from cache, p50 {_num(memory['p50_ms'], '.2f')} ms, "
            f"p99 {_num(memory['p99_ms'], '.2f')} ms",
            f"  VmRSS at start (before agents): {_mib(memory['rss_at_start_kib'])}",
            f"  {'requests done':>14}  {'VmRSS':>12}",
        ]
        for sample in memory["rss_samples"]:
            lines.append(f"  {sample['requests_done']:>14}  {_mib(sample['rss_kib']):>12}")
    if "slot_engine" in report:
        lines += ["", "slot engine (bench/bench_slots.py)"]
        slot_engine = report["slot_engine"]
        if "error" in slot_engine:
            lines.append(f"  not run: {slot_engine['error']}")
        else:
            lines.append(slot_engine_table.rstrip() or "  (no table printed)")
    if report.get("targets"):
        lines += ["", "targets (reported, not asserted)"]
        for target in report["targets"]:
            lines.append(
                f"  {target['target']:<58}  {_num(target['measured'], 'g'):>9}  "
                f"{target['limit']:>7}  {target['verdict']}"
            )
    return "\n".join(lines)
