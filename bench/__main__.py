"""Orchestrator of ``python -m bench`` (``make bench``): the service's latency and memory figures.

Sections (``--sections``, default all; see bench/provider.py for the provider-facing ones):

- ``slots``: the slot-engine micro-benchmark (bench/bench_slots.py) if present.
- ``warm``: warm ListSlots vs a bare echo server. Seed the demo tenant in a temporary data dir;
  start the service; one real ListSlots call gives the response size; start the echo baseline
  returning that many bytes; then, per concurrency, the separate load-generator process runs
  against echo and against ListSlots with the same settings.
- ``cold``: the Cal.com emulator (bench.calcom_server, real HTTP on loopback) answers
  ``GET /v2/slots`` after 80 ms; ListSlots requests that each miss the cache, then 50
  concurrent ones for one uncached date and the emulator's count of provider calls for it.
- ``book``: the emulator answers at once; Book latency at concurrency 8, each for a distinct
  free slot, on SQLite and on PostgreSQL (a fresh schema, dropped afterwards; skipped with a
  message when PostgreSQL is unreachable).
- ``memory``: the service with a small cache bound; VmRSS before and during ListSlots spread
  over 1,000 agents of the demo account's built-in calendar and many dates.

Prints tables and the full JSON, and writes the JSON to bench/results/latest.json (or --json).
Every server is stopped and the temporary dir removed on every exit path, Ctrl-C included.
Targets are reported as "met"/"missed", never asserted.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import grpc

from bench import calendar_target, echo_server, procs, provider_db, report, sections
from bench.slot_engine import run_slot_engine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"
READY_TIMEOUT_S = 60.0


SECTIONS = ("slots", "warm", "cold", "book", "memory")


def parse_concurrency(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,8,32, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be >= 1, got {text!r}")
    return values


def parse_sections(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return list(SECTIONS)
    unknown = sorted(set(names) - set(SECTIONS))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"sections are {','.join(SECTIONS)} (or all); got {text!r}"
        )
    return [name for name in SECTIONS if name in names]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument(
        "--sections",
        type=parse_sections,
        default=list(SECTIONS),
        help=f"comma-separated, from {','.join(SECTIONS)} (default all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorter runs everywhere (about a fifth of the requests): a smoke test",
    )
    parser.add_argument(
        "--concurrency", type=parse_concurrency, default=[1, 8, 32], help="e.g. 1,8,32"
    )
    # ListSlots ran at ~300-2,000 calls/s on a shared 2-core machine. 10,000 per run gives p99
    # 100 samples above it and a full run of under a minute there; the per-run time limit (6
    # runs x (20 s + 5 s warm-up)) caps a slow machine at about 3 minutes.
    parser.add_argument("--requests", type=int, default=10000, help="warm: requests per run")
    parser.add_argument("--warmup", type=int, default=200, help="warm: unmeasured per run")
    parser.add_argument(
        "--time-limit", type=float, default=20.0, help="warm: seconds before a run stops early"
    )
    cold = parser.add_argument_group("cold")
    cold.add_argument("--cold-requests", type=int, default=200, help="cache-missing ListSlots")
    cold.add_argument("--cold-concurrency", type=int, default=1, help="concurrent workers")
    cold.add_argument("--cold-agents", type=int, default=4, help="agents on the connection")
    cold.add_argument("--cold-delay-ms", type=float, default=80.0, help="emulator delay")
    cold.add_argument("--callers", type=int, default=50, help="single flight: concurrent calls")
    book = parser.add_argument_group("book")
    book.add_argument("--book-requests", type=int, default=200, help="Book calls per database")
    book.add_argument(
        "--book-concurrency",
        type=parse_concurrency,
        default=[8, 1],
        help="concurrency levels, e.g. 8,1 (the target is read at 8)",
    )
    book.add_argument(
        "--postgres",
        default=provider_db.DEFAULT_POSTGRES,
        help="PostgreSQL server URL for the book section ('' skips it)",
    )
    memory = parser.add_argument_group("memory")
    memory.add_argument("--memory-requests", type=int, default=100000, help="ListSlots calls")
    memory.add_argument("--memory-agents", type=int, default=1000, help="agents created")
    memory.add_argument(
        "--memory-max-days", type=int, default=2000, help="CALENDAR_CACHE_MAX_DAYS of the service"
    )
    memory.add_argument(
        "--memory-span-days", type=int, default=2500, help="dates spread over this many days"
    )
    memory.add_argument("--memory-concurrency", type=int, default=32, help="concurrent workers")
    memory.add_argument(
        "--memory-time-limit", type=float, default=200.0, help="seconds before it stops early"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write JSON")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.time_limit <= 0:
        parser.error("--requests must be >= 1, --warmup >= 0, --time-limit > 0")
    counts = (
        args.cold_requests,
        args.cold_concurrency,
        args.cold_agents,
        args.callers,
        args.book_requests,
        args.memory_requests,
        args.memory_agents,
        args.memory_max_days,
        args.memory_span_days,
        args.memory_concurrency,
    )
    if min(counts) < 1 or args.memory_time_limit <= 0 or args.cold_delay_ms < 0:
        parser.error("counts must be >= 1, --memory-time-limit > 0, --cold-delay-ms >= 0")
    if args.quick:
        args.requests = max(1, args.requests // 5)
        args.time_limit = min(args.time_limit, 8.0)
        args.cold_requests = max(1, args.cold_requests // 5)
        args.book_requests = max(1, args.book_requests // 5)
        args.memory_requests = max(1, args.memory_requests // 5)
        args.memory_agents = max(1, args.memory_agents // 5)
        args.memory_time_limit = min(args.memory_time_limit, 40.0)
    return args


def log(message: str) -> None:
    # Progress goes to stderr so stdout holds only the table and the JSON.
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_load(
    args: argparse.Namespace,
    address: str,
    method: str,
    request: bytes,
    metadata: Sequence[tuple[str, str]],
    concurrency: int,
) -> dict[str, Any]:
    """One bench.load process; its JSON, or {"error": ...} if it failed."""
    argv = [
        sys.executable,
        "-m",
        "bench.load",
        f"--target={address}",
        f"--method={method}",
        f"--request-b64={base64.b64encode(request).decode()}",
        f"--concurrency={concurrency}",
        f"--requests={args.requests}",
        f"--warmup={args.warmup}",
        f"--time-limit={args.time_limit}",
    ]
    # The API key is on the command line: it belongs to a throw-away tenant in a temp dir.
    argv += [f"--metadata={key}={value}" for key, value in metadata]
    # Generous margin over the load generator's own limits (warm-up 5 s, run, connect 10 s).
    timeout = args.time_limit + 60
    try:
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"load generator did not finish within {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"error": f"load generator exit code {done.returncode}: {tail[0]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def service_env(work: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return procs.clean_env(
        {
            "CALENDAR_DATA_DIR": str(work / "data"),
            "CALENDAR_HOST": "127.0.0.1",
            "CALENDAR_PORT": "0",
            # Port 0 for the OAuth/webhook endpoint too, so a busy :8080 cannot stop the run.
            "CALENDAR_HTTP_PORT": "0",
            "CALENDAR_LOG_LEVEL": "WARNING",
            "CALENDAR_GRACE_PERIOD_SECONDS": "2",
            **(extra or {}),
        }
    )


def warm_section(
    args: argparse.Namespace, work: Path, env: dict[str, str], demo: calendar_target.Demo
) -> tuple[dict[str, Any], bool]:
    """Warm ListSlots vs echo: (the report's warm keys, all runs ok)."""
    day = calendar_target.next_tuesday(demo.time_zone)
    request = calendar_target.list_slots_request(demo, day)
    servers: list[procs.Server] = []
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        log("warm: starting the service")
        service = procs.start_server(
            "service",
            [sys.executable, "-m", "service", "serve"],
            env=env,
            cwd=ROOT,
            log_path=work / "service.log",
            ready_timeout=READY_TIMEOUT_S,
        )
        servers.append(service)
        calendar_target.wait_serving(service.address)
        warm = calendar_target.warm_up(service.address, request, demo)
        log(f"ListSlots warm-up: {warm.slots} slots, {warm.response_bytes} bytes")

        log("warm: starting the echo server")
        echo = procs.start_server(
            "echo",
            [
                sys.executable,
                "-m",
                "bench.echo_server",
                "--port=0",
                f"--size={warm.response_bytes}",
            ],
            env=procs.clean_env({}),
            cwd=ROOT,
            log_path=work / "echo.log",
            ready_timeout=READY_TIMEOUT_S,
        )
        servers.append(echo)

        for concurrency in args.concurrency:
            # Back to back at each level, so both targets see the same machine conditions.
            log(f"concurrency {concurrency}: echo")
            # Echo gets the same request bytes and metadata (ignored): equal client and wire cost.
            runs[("echo", concurrency)] = run_load(
                args, echo.address, echo_server.METHOD_PATH, request, demo.metadata, concurrency
            )
            log(f"concurrency {concurrency}: ListSlots")
            runs[("list_slots", concurrency)] = run_load(
                args,
                service.address,
                calendar_target.LIST_SLOTS,
                request,
                demo.metadata,
                concurrency,
            )
    finally:
        for server in reversed(servers):
            procs.stop_server(server)

    all_ok = all("error" not in run for run in runs.values())
    part = {
        "settings": {
            "concurrency": args.concurrency,
            "requests": args.requests,
            "warmup": args.warmup,
            "time_limit_s": args.time_limit,
            "agent_id": demo.agent_id,
            "date": day.isoformat(),
            "business_time_zone": demo.time_zone,
            "caller_time_zone": calendar_target.CALLER_TIME_ZONE,
            "max_results": calendar_target.MAX_RESULTS,
        },
        "payload_bytes": warm.response_bytes,
        "list_slots_warmup": {"slots": warm.slots, "response_bytes": warm.response_bytes},
        "results": report.summarize_runs(args.concurrency, runs),
    }
    return part, all_ok


def benchmark(args: argparse.Namespace, work: Path) -> tuple[dict[str, Any], str, bool]:
    """Everything between setup and teardown: (report, slot-engine table, all runs ok)."""
    full: dict[str, Any] = {
        "benchmark": "gleam-calendar: ListSlots vs echo, cold ListSlots, Book, memory",
        "timestamp": report.timestamp(),
        "machine": report.machine_info(),
        "sections": args.sections,
    }
    slot_table = ""
    all_ok = True
    if "slots" in args.sections:
        log("slot engine micro-benchmark")
        full["slot_engine"], slot_table = run_slot_engine(ROOT, work / "slot_engine.json")

    if set(args.sections) - {"slots"}:
        env = service_env(work)
        log("seeding the demo tenant")
        demo = calendar_target.seed_demo(env, ROOT)
        full["demo"] = {"agent_id": demo.agent_id, "connection_id": demo.connection_id}
        if "warm" in args.sections:
            part, ok = warm_section(args, work, env, demo)
            full.update(part)
            all_ok &= ok
        runner = sections.Runner(args, work, ROOT, env, demo, log)
        if "cold" in args.sections or "book" in args.sections:
            full.update(runner.provider_sections())
        if "memory" in args.sections:
            full["memory"] = runner.memory_section()
    full["targets"] = report.targets(full)
    return full, slot_table, all_ok


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM would otherwise end the process without running the finally blocks.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    work = Path(tempfile.mkdtemp(prefix="gleam-bench-"))
    try:
        full, slot_table, all_ok = benchmark(args, work)
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    except (RuntimeError, grpc.RpcError, subprocess.SubprocessError) as error:
        # Expected set-up failures (server did not start, seeding or warm-up call failed):
        # one clear line. Anything else propagates with its traceback, after the cleanup.
        log(f"failed: {type(error).__name__}: {error}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report.render(full, slot_table))
    print()
    text = report.write_json(full, args.json)
    print(text)
    log(f"JSON written to {args.json}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
