"""The database handle: async engines, sessions for reading and for writing, and a health ping.

SQLite needs one thing PostgreSQL does not: write transactions start with ``BEGIN IMMEDIATE``,
so they take the database's single write lock up front. That serialises check-then-insert
sequences (the time claim) across processes as well as tasks; reads stay concurrent (WAL).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Both libraries log statements with their parameters (caller names, emails) when the root
# logger is verbose; statements are never worth that. hide_parameters below also keeps them out
# of exception messages.
for _name in ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool"):
    logging.getLogger(_name).setLevel(logging.WARNING)


def async_url(url: str) -> str:
    """The async driver's URL for a configured (sync-style) URL."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return _render(parsed.set(drivername="sqlite+aiosqlite"))
    if parsed.drivername in ("postgresql", "postgres"):
        return _render(parsed.set(drivername="postgresql+psycopg"))
    return url


def sync_url(url: str) -> str:
    """The sync driver's URL (Alembic runs synchronously)."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        return _render(parsed.set(drivername="sqlite"))
    if parsed.drivername in ("postgresql", "postgres"):
        return _render(parsed.set(drivername="postgresql+psycopg"))
    return url


def _render(url: URL) -> str:
    # str(URL) masks the password as "***", which would then be used to connect.
    return url.render_as_string(hide_password=False)


def _sqlite_engine(url: URL, *, begin: str, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        connect_args={"timeout": 30},
        hide_parameters=True,
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so "begin" below decides the lock mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        parsed = make_url(async_url(url))
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database:
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.read_engine = _sqlite_engine(parsed, begin="BEGIN", pool_size=pool_size)
            # One writer connection per process: SQLite runs one write transaction at a time
            # anyway, and waiting in the pool's FIFO queue is fair and wakes at once, while
            # waiting in SQLite's busy handler polls with sleeps of up to 100 ms (the tail of
            # concurrent Books). Other processes still serialise on BEGIN IMMEDIATE.
            self.write_engine = _sqlite_engine(parsed, begin="BEGIN IMMEDIATE", pool_size=1)
        else:
            self.read_engine = create_async_engine(
                parsed,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                hide_parameters=True,
            )
            self.write_engine = self.read_engine
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block ends and rolls back on any exception."""
        async with self._write() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        try:
            async with self.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
