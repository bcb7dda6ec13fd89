"""Command line: serve (default), migrate, create-account, seed-demo, rotate-credentials,
notify-worker."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from service.config import ENV_PREFIX, Settings, describe_settings
from service.logs import configure
from service.model import Plan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gleam-calendar",
        description="gleam-calendar: calendar access for AI phone agents (gRPC, :50051).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"configuration (environment variables, prefix {ENV_PREFIX}):\n"
        + describe_settings(),
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="migrate, then run the gRPC server (the default)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    account = sub.add_parser("create-account", help="create an account and print its API key")
    account.add_argument("name")
    account.add_argument("--plan", choices=[p.value for p in Plan], default=Plan.PROFESSIONAL.value)
    account.add_argument("--json", action="store_true", help="print JSON")
    demo = sub.add_parser("seed-demo", help="create the demo tenant and print its API key")
    demo.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("rotate-credentials", help="re-encrypt stored credentials with the first key")
    sub.add_parser(
        "notify-worker",
        help="deliver confirmations (email, SMS) on their own; pair with "
        "CALENDAR_NOTIFY_IN_SERVER=false on the servers",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    config = Settings()
    configure(config.log_level)
    command = args.command or "serve"
    from service.store.migrate import upgrade

    upgrade(config.sqlalchemy_url)
    if command == "migrate":
        print("migrations applied", file=sys.stderr)
        return
    asyncio.run(_run(command, args, config))


async def _run(command: str, args: argparse.Namespace, config: Settings) -> None:
    from service.api.server import serve
    from service.scheduling.accounts import create_account
    from service.scheduling.app import CalendarApp
    from service.scheduling.demo import seed_demo
    from service.scheduling.rotation import rotate_credentials

    app = CalendarApp.build(config)
    try:
        if command == "serve":
            await serve(app)
        elif command == "create-account":
            account_id, key = await create_account(app.deps, args.name, Plan(args.plan))
            _print({"account_id": account_id, "api_key": key, "plan": args.plan}, args.json)
        elif command == "seed-demo":
            demo = await seed_demo(app)
            _print(
                {
                    "account_id": demo.account_id,
                    "api_key": demo.api_key,
                    "agent_id": demo.agent_id,
                    "connection_id": demo.connection_id,
                    "event_type_id": demo.event_type_id,
                    "time_zone": demo.time_zone,
                },
                args.json,
            )
        elif command == "rotate-credentials":
            count = await rotate_credentials(app.deps)
            print(f"re-encrypted {count} credential(s)")
        elif command == "notify-worker":
            from service.notify.worker import run_until_signal

            await run_until_signal(app.deps)
    finally:
        if command != "serve":
            await app.close()


def _print(values: dict[str, str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(values))
        return
    for key, value in values.items():
        print(f"{key}: {value}")
