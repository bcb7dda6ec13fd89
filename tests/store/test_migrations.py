"""Migrations from an empty database, down and up again, on each backend."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from service.store.db import sync_url
from service.store.migrate import downgrade, upgrade

TABLES = {
    "accounts",
    "api_keys",
    "connections",
    "builtin_calendars",
    "busy_blocks",
    "event_types",
    "agent_settings",
    "appointments",
    "time_claims",
    "idempotency_records",
    "outbox",
    "audit_log",
    "oauth_states",
    "confirmation_templates",
}


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_down_and_up(db_url: str) -> None:
    assert _tables(db_url) == set()
    upgrade(db_url)
    assert _tables(db_url) == TABLES
    upgrade(db_url)  # idempotent: already at head
    downgrade(db_url)
    assert _tables(db_url) == set()
    upgrade(db_url)
    assert _tables(db_url) == TABLES


def test_urls_keep_their_password() -> None:
    from service.store.db import async_url

    url = "postgresql://svc:s3cr%40t@db.internal:5432/calendar"
    assert async_url(url) == "postgresql+psycopg://svc:s3cr%40t@db.internal:5432/calendar"
    assert sync_url("sqlite+aiosqlite:///var/x.db") == "sqlite:///var/x.db"
