"""A throw-away PostgreSQL schema for the Book section: created fresh, dropped afterwards.

The service reaches it through ``search_path`` in its database URL, so nothing outside the new
schema is touched. When the server cannot be reached, ``fresh_schema`` yields None and the
caller reports the section as skipped.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def service_url(server_url: str, schema: str) -> str:
    """The service's SQLAlchemy URL for ``schema`` on ``server_url`` (psycopg 3 driver)."""
    base = server_url.replace("postgresql://", "postgresql+psycopg://", 1)
    options = quote(f"-csearch_path={schema},public", safe="")
    return f"{base}{'&' if '?' in base else '?'}options={options}"


@contextmanager
def fresh_schema(server_url: str) -> Iterator[tuple[str, str] | tuple[None, str]]:
    """Yields (schema, "") with the schema created, or (None, why) when unreachable."""
    schema = f"bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(server_url, connect_timeout=5, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as error:
        yield None, f"PostgreSQL unreachable at {server_url}: {str(error).strip()[:200]}"
        return
    try:
        yield schema, ""
    finally:
        with psycopg.connect(server_url, connect_timeout=5, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
