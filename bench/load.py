"""Load generator: one grpc.aio channel, C concurrent workers, raw-bytes unary calls.

``python -m bench.load --target 127.0.0.1:PORT --method /pkg.Service/Method
--request-b64 BYTES [--metadata key=value ...] --concurrency C --requests N``

The request is sent pre-serialized and the response is not parsed (no serializers on the
multicallable), so every target costs the client the same and the measured difference is the
server's. Warm-up requests run first and are discarded. The measured phase stops after N
requests or after ``--time-limit`` seconds, whichever comes first. Prints one JSON object:
count, errors, p50_ms, p90_ms, p99_ms, mean_ms, rps, wall_s (and a few descriptive fields).

Only loopback targets are accepted: this is a local benchmark, never a load test of a remote.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ipaddress
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

Metadata = tuple[tuple[str, str], ...]


@dataclass
class Phase:
    """Shared state of one phase: workers draw tickets until the budget or deadline runs out."""

    budget: int
    deadline: float  # time.perf_counter() value after which no new request starts
    issued: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def take(self) -> bool:
        # Single-threaded event loop: no lock needed between the check and the increment.
        if self.issued >= self.budget or time.perf_counter() >= self.deadline:
            return False
        self.issued += 1
        return True


def require_loopback(target: str) -> None:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"target must be HOST:PORT, got {target!r}")
    host = host.strip("[]")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing non-loopback target {target!r}")


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence (an observed value, never interpolated)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


async def worker(
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    request: bytes,
    metadata: Metadata,
    call_deadline_s: float,
    phase: Phase,
) -> None:
    while phase.take():
        began = time.perf_counter()
        try:
            await call(request, metadata=metadata, timeout=call_deadline_s)
        except grpc.aio.AioRpcError as error:
            name = error.code().name
            phase.errors[name] = phase.errors.get(name, 0) + 1
            continue
        phase.latencies.append(time.perf_counter() - began)


async def run_phase(
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes],
    request: bytes,
    metadata: Metadata,
    *,
    concurrency: int,
    budget: int,
    time_limit: float,
    call_deadline_s: float,
) -> tuple[Phase, float]:
    began = time.perf_counter()
    phase = Phase(budget=budget, deadline=began + time_limit)
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker(call, request, metadata, call_deadline_s, phase))
    return phase, time.perf_counter() - began


async def run(args: argparse.Namespace) -> dict[str, object]:
    request = base64.b64decode(args.request_b64)
    metadata: Metadata = tuple(args.metadata)
    async with grpc.aio.insecure_channel(args.target) as channel:
        # No serializers: the request goes out as given and the response comes back as bytes.
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            args.method, request_serializer=None, response_deserializer=None
        )
        await asyncio.wait_for(channel.channel_ready(), timeout=args.connect_timeout)
        # Warm-up first (connection set-up, server caches, first-call allocations), its figures
        # dropped; then the measured phase. Each is bounded in count and in time.
        await run_phase(
            call,
            request,
            metadata,
            concurrency=args.concurrency,
            budget=args.warmup,
            time_limit=args.warmup_time_limit,
            call_deadline_s=args.timeout,
        )
        phase, wall = await run_phase(
            call,
            request,
            metadata,
            concurrency=args.concurrency,
            budget=args.requests,
            time_limit=args.time_limit,
            call_deadline_s=args.timeout,
        )
    ordered = sorted(phase.latencies)
    count = len(ordered)
    return {
        "target": args.target,
        "method": args.method,
        "concurrency": args.concurrency,
        "requested": args.requests,
        "warmup": args.warmup,
        "count": count,
        "errors": sum(phase.errors.values()),
        "error_codes": phase.errors,
        "timed_out": phase.issued < args.requests,
        # Rounded to 0.1 us and 0.1 rps: finer digits are noise, not signal.
        "p50_ms": round(percentile(ordered, 50) * 1000, 4),
        "p90_ms": round(percentile(ordered, 90) * 1000, 4),
        "p99_ms": round(percentile(ordered, 99) * 1000, 4),
        "mean_ms": round(sum(ordered) / count * 1000, 4) if count else math.nan,
        "rps": round(count / wall, 1) if wall > 0 else math.nan,
        "wall_s": round(wall, 3),
    }


def metadata_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"metadata must be key=value, got {text!r}")
    return key.strip().lower(), value


def at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--target", required=True, help="HOST:PORT on a loopback address")
    parser.add_argument("--method", required=True, help="full method path, /pkg.Service/Method")
    parser.add_argument("--request-b64", default="", help="serialized request, base64")
    parser.add_argument(
        "--metadata", type=metadata_pair, action="append", default=[], help="key=value, repeatable"
    )
    parser.add_argument("--concurrency", type=at_least(1), default=1, help="concurrent workers")
    parser.add_argument("--requests", type=at_least(1), default=1000, help="measured requests")
    parser.add_argument("--warmup", type=at_least(0), default=100, help="unmeasured warm-up calls")
    parser.add_argument(
        "--time-limit", type=float, default=30.0, help="seconds before the measured phase stops"
    )
    parser.add_argument(
        "--warmup-time-limit", type=float, default=5.0, help="seconds before warm-up stops"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per-call deadline, seconds")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds")
    args = parser.parse_args(argv)
    require_loopback(args.target)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        result = asyncio.run(run(args))
    except TimeoutError:
        raise SystemExit(f"could not connect to {args.target}") from None
    # NaN is not JSON; an empty run reports null figures instead.
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()}
    json.dump(clean, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
