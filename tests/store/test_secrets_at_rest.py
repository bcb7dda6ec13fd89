"""No API key or credential appears in clear in the database file or in the logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from gleam.calendar.v1 import calendar_service_pb2 as api
from gleam.calendar.v1 import resources_pb2 as res
from service.scheduling.app import CalendarApp
from service.scheduling.rotation import rotate_credentials
from service.store import tables as t
from service.store.crypto import CredentialCipher, generate_key, parse_keys
from tests.conftest import Server
from tests.helpers import TUESDAY_9AM, Tenant, book_request


async def test_nothing_secret_or_personal_in_db_file_or_logs(
    server: Server,
    app: CalendarApp,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "cal_live_0123456789abcdef-secret"
    async with app.deps.db.write() as session:
        row = await session.get(t.Connection, tenant.connection_id)
        assert row is not None
        row.credentials = app.deps.cipher.encrypt(secret, context=row.id)
    booking = book_request(
        tenant,
        TUESDAY_9AM,
        caller=res.Caller(name="Zebulon Quix", email="zebulon@example.org", phone="+12025550143"),
    )
    await server.stub.Book(booking, metadata=tenant.auth)
    await server.stub.ListSlots(
        api.ListSlotsRequest(agent_id=tenant.agent_id, date={"year": 2026, "month": 11, "day": 24}),
        metadata=tenant.auth,
    )
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert '"method": "Book"' in logs  # the access log did run
    for needle in (tenant.api_key, secret, "Zebulon", "zebulon@example.org", "+12025550143"):
        assert needle not in logs

    if app.deps.db.dialect == "sqlite":
        await app.deps.db.dispose()  # flush the WAL into the main file
        raw = (tmp_path / "calendar.db").read_bytes()
        assert tenant.api_key.encode() not in raw
        assert secret.encode() not in raw
    async with app.deps.db.read() as session:
        stored = await session.scalar(
            select(t.Connection.credentials).where(t.Connection.id == tenant.connection_id)
        )
        digests = list(await session.scalars(select(t.ApiKey.digest)))
    assert stored is not None
    assert secret not in stored
    assert tenant.api_key not in digests


async def test_rotate_credentials_re_encrypts_with_the_first_key(
    app: CalendarApp, tenant: Tenant
) -> None:
    old_key, new_key = generate_key(), generate_key()
    app.deps.cipher = CredentialCipher(parse_keys(old_key))
    async with app.deps.db.write() as session:
        row = await session.get(t.Connection, tenant.connection_id)
        assert row is not None
        row.credentials = app.deps.cipher.encrypt("token", context=row.id)
    app.deps.cipher = CredentialCipher(parse_keys(f"{new_key},{old_key}"))
    assert await rotate_credentials(app.deps) == 1
    assert await rotate_credentials(app.deps) == 0
    async with app.deps.db.read() as session:
        token = await session.scalar(
            select(t.Connection.credentials).where(t.Connection.id == tenant.connection_id)
        )
    assert token is not None
    only_new = CredentialCipher(parse_keys(new_key))
    assert only_new.decrypt(token, context=tenant.connection_id) == "token"
