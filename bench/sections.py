"""Runs the cold, book and memory sections: the processes they need, then bench.provider.

- cold and book share one emulator process (bench.calcom_server) and, on SQLite, one service
  started with ``CALENDAR_CALCOM_API_URL`` pointing at it; the emulator's delay is switched from
  80 ms (cold) to 0 (book) through its control endpoint.
- book on PostgreSQL: a fresh schema, ``seed-demo`` there (it migrates first), a second service.
- memory: a service of its own on the SQLite data dir with ``CALENDAR_CACHE_MAX_DAYS`` small.

Each service is stopped before the next starts, so the two cores are not shared between them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc

from bench import calendar_target, procs, provider, provider_db

T = TypeVar("T")
READY_TIMEOUT_S = 60.0


def first_free_day() -> date:
    """A week from today (UTC): clear of minimum-notice rules and of today's partial day."""
    return datetime.now(UTC).date() + timedelta(days=7)


class Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        work: Path,
        root: Path,
        env: dict[str, str],
        demo: calendar_target.Demo,
        log: Callable[[str], None],
    ) -> None:
        self.args = args
        self.work = work
        self.root = root
        self.env = env
        self.demo = demo
        self.log = log

    # Processes ---------------------------------------------------------------------------

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> procs.Server:
        return procs.start_server(
            name,
            argv,
            env=env,
            cwd=self.root,
            log_path=self.work / f"{name}.log",
            ready_timeout=READY_TIMEOUT_S,
        )

    def _service(self, name: str, extra: dict[str, str]) -> procs.Server:
        env = {**self.env, **extra}
        server = self._start(name, [sys.executable, "-m", "service", "serve"], env)
        try:
            calendar_target.wait_serving(server.address)
        except BaseException:
            procs.stop_server(server)
            raise
        return server

    def _grpc(self, address: str, body: Callable[[provider.Stub], Awaitable[T]]) -> T:
        async def run() -> T:
            async with grpc.aio.insecure_channel(address) as channel:
                return await body(provider.Stub(channel))

        return asyncio.run(run())

    # cold + book -------------------------------------------------------------------------

    def provider_sections(self) -> dict[str, Any]:
        args = self.args
        out: dict[str, Any] = {}
        self.log(f"starting the Cal.com emulator (GET /v2/slots delay {args.cold_delay_ms:g} ms)")
        emulator = self._start(
            "calcom",
            [
                sys.executable,
                "-m",
                "bench.calcom_server",
                "--port=0",
                f"--delay-ms={args.cold_delay_ms:g}",
            ],
            procs.clean_env({}),
        )
        try:
            control = provider.EmulatorControl(emulator.address)
            calcom_env = {"CALENDAR_CALCOM_API_URL": f"http://{emulator.address}"}
            service = self._service("service-calcom", calcom_env)
            try:
                day = first_free_day()
                if "cold" in args.sections:
                    out["cold"], out["single_flight"], day = self._cold(service.address, control)
                if "book" in args.sections:
                    control.set_delay(0)
                    out.setdefault("book", {})["sqlite"] = self._book(
                        service.address, self.demo, day
                    )
                    day += timedelta(
                        days=2 * args.book_requests * len(args.book_concurrency) // 10 + 30
                    )
            finally:
                procs.stop_server(service)
            if "book" in args.sections:
                out.setdefault("book", {})["postgresql"] = self._book_postgres(calcom_env, day)
            out["emulator"] = {k: v for k, v in control.stats().items() if k != "by_start"}
        finally:
            procs.stop_server(emulator)
        return out

    def _cold(
        self, address: str, control: provider.EmulatorControl
    ) -> tuple[dict[str, Any], dict[str, Any], date]:
        args = self.args
        metadata = self.demo.metadata

        async def body(
            stub: provider.Stub,
        ) -> tuple[dict[str, Any], dict[str, Any], date]:
            ids = [f"bench-cold-{i}" for i in range(args.cold_agents)]
            agents = await provider.setup_calcom(stub, metadata, ids, self.demo.agent_id)
            self.log(
                f"cold: {args.cold_requests} cache-missing ListSlots, "
                f"concurrency {args.cold_concurrency}"
            )
            cold, next_day = await provider.cold_list_slots(
                stub,
                metadata,
                agents,
                first_free_day(),
                requests=args.cold_requests,
                concurrency=args.cold_concurrency,
                time_limit=120.0,
            )
            cold.update(
                {
                    "concurrency": args.cold_concurrency,
                    "provider_delay_ms": args.cold_delay_ms,
                    "agents": len(agents),
                    "event_types": len(agents[0].event_type_ids),
                }
            )
            while next_day.weekday() >= 5:
                next_day += timedelta(days=1)
            self.log(f"single flight: {args.callers} concurrent ListSlots for {next_day}")
            flight = await provider.single_flight(
                stub, metadata, agents[0], next_day, control, callers=args.callers
            )
            return cold, flight, next_day + timedelta(days=7)

        return self._grpc(address, body)

    def _book(self, address: str, demo: calendar_target.Demo, first_day: date) -> dict[str, Any]:
        """One Book run per concurrency level, keyed "c=N"; each run books its own slots."""
        args = self.args

        async def body(stub: provider.Stub) -> dict[str, Any]:
            metadata = demo.metadata
            agents = await provider.setup_calcom(stub, metadata, ["bench-book"], demo.agent_id)
            total = args.book_requests * len(args.book_concurrency)
            starts, _ = await provider.free_starts(stub, metadata, agents[0], first_day, total)
            runs: dict[str, Any] = {}
            for i, concurrency in enumerate(args.book_concurrency):
                mine = starts[i * args.book_requests : (i + 1) * args.book_requests]
                self.log(f"book: {len(mine)} Book calls, concurrency {concurrency}")
                runs[f"c={concurrency}"] = await provider.book_overhead(
                    stub, metadata, agents[0], mine, concurrency=concurrency, time_limit=120.0
                )
            # The same on the built-in calendar: no provider round trip at all, so this is
            # our own cost alone (gRPC, checks, the database) and the floor under the above.
            # From the first free day, not first_day: the demo agent books at most 60 days out.
            builtin = provider.CalcomAgent(demo.agent_id, demo.connection_id, ("",))
            starts, _ = await provider.free_starts(stub, metadata, builtin, first_free_day(), total)
            for i, concurrency in enumerate(args.book_concurrency):
                mine = starts[i * args.book_requests : (i + 1) * args.book_requests]
                self.log(f"book: {len(mine)} built-in Book calls, concurrency {concurrency}")
                runs[f"built-in c={concurrency}"] = await provider.book_overhead(
                    stub, metadata, builtin, mine, concurrency=concurrency, time_limit=120.0
                )
            return runs

        return self._grpc(address, body)

    def _book_postgres(self, calcom_env: dict[str, str], first_day: date) -> dict[str, Any]:
        if not self.args.postgres:
            return {"skipped": "--postgres is empty"}
        with provider_db.fresh_schema(self.args.postgres) as (schema, why):
            if schema is None:
                self.log(f"book on PostgreSQL skipped: {why}")
                return {"skipped": why}
            self.log(f"book on PostgreSQL: schema {schema}")
            env = {
                **self.env,
                **calcom_env,
                "CALENDAR_DATABASE_URL": provider_db.service_url(self.args.postgres, schema),
            }
            demo = calendar_target.seed_demo(env, self.root)
            service = self._service("service-postgres", env)
            try:
                result = self._book(service.address, demo, first_day)
            finally:
                procs.stop_server(service)
            result["schema"] = schema
            return result

    # memory ------------------------------------------------------------------------------

    def memory_section(self) -> dict[str, Any]:
        args = self.args
        extra = {"CALENDAR_CACHE_MAX_DAYS": str(args.memory_max_days)}
        service = self._service("service-memory", extra)
        try:
            pid = service.process.pid
            rss_start = provider.vm_rss_kib(pid)

            async def body(stub: provider.Stub) -> dict[str, Any]:
                self.log(f"memory: creating {args.memory_agents} agents")
                ids = await provider.create_agents(
                    stub, self.demo.metadata, self.demo.agent_id, args.memory_agents
                )
                self.log(
                    f"memory: {args.memory_requests} ListSlots over {len(ids)} agents and "
                    f"{args.memory_span_days} days, cache bound {args.memory_max_days} days"
                )
                return await provider.memory_run(
                    stub,
                    self.demo.metadata,
                    pid,
                    ids,
                    datetime.now(UTC).date() + timedelta(days=2),
                    requests=args.memory_requests,
                    span_days=args.memory_span_days,
                    checkpoints=4,
                    concurrency=args.memory_concurrency,
                    time_limit=args.memory_time_limit,
                )

            result = self._grpc(service.address, body)
        finally:
            procs.stop_server(service)
        result.update(
            {
                "rss_at_start_kib": rss_start,
                "cache_max_days": args.memory_max_days,
                "concurrency": args.memory_concurrency,
                "time_limit_s": args.memory_time_limit,
            }
        )
        return result
