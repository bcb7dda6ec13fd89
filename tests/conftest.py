"""Shared fixtures: a database on each backend, the app, an in-process aio server, a tenant.

Every test that uses ``db_url`` runs on SQLite, and again on PostgreSQL when
CALENDAR_TEST_DATABASE_URL is set (.ci/run sets it); without it the PostgreSQL run is skipped
with a message saying so. Each PostgreSQL test gets a schema of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest
from sqlalchemy.engine import make_url

from gleam.calendar.v1 import calendar_service_pb2_grpc as api_grpc
from service.api.server import create_server
from service.config import Settings
from service.scheduling.app import CalendarApp
from service.store.crypto import generate_key
from service.store.migrate import upgrade
from tests.helpers import NOW, Clock, Tenant, make_tenant

PG_ENV = "CALENDAR_TEST_DATABASE_URL"


def _pg_schema_url(base: str) -> Iterator[str]:
    schema = "t_" + uuid.uuid4().hex[:12]
    conninfo = make_url(base).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute(f"CREATE SCHEMA {schema}")
    url = make_url(base).set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema},public"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(
            conninfo.render_as_string(hide_password=False), autocommit=True
        ) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'calendar.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(
            f"PostgreSQL run skipped: set {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)"
        )
    yield from _pg_schema_url(base)


@pytest.fixture
def migrated_url(db_url: str) -> str:
    upgrade(db_url)
    return db_url


@pytest.fixture
def config(migrated_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=migrated_url,
        data_dir=tmp_path,
        encryption_keys=generate_key(),
        settings_cache_seconds=0.0,
        auth_cache_seconds=30.0,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def app(config: Settings, clock: Clock) -> AsyncIterator[CalendarApp]:
    application = CalendarApp.build(config)
    application.deps.clock = clock
    try:
        yield application
    finally:
        await application.close()


@dataclass
class Server:
    port: int
    channel: grpc.aio.Channel
    stub: api_grpc.CalendarServiceStub

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
async def server(app: CalendarApp) -> AsyncIterator[Server]:
    srv, port, _ = await create_server(app, "127.0.0.1:0")
    await srv.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Server(port, channel, api_grpc.CalendarServiceStub(channel))
    finally:
        await channel.close()
        await srv.stop(None)


@pytest.fixture
async def tenant(app: CalendarApp) -> Tenant:
    return await make_tenant(app)
