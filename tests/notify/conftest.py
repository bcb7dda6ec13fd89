"""Fixtures for confirmations: a real SMTP server, an SMS emulator, a worker wired to both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from service.model import Confirmations
from service.notify.worker import OutboxWorker
from service.scheduling.app import CalendarApp
from service.store import tables as t
from tests.helpers import Clock, Tenant
from tests.notify import sms_emulator
from tests.notify.sms_emulator import SmsEmulator
from tests.notify.smtp import SmtpServer

SENDER = "bookings@example.com"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sms() -> SmsEmulator:
    return SmsEmulator()


@dataclass
class Notify:
    worker: OutboxWorker
    clock: Clock  # the worker's clock: outbox rows are stamped with real time


@pytest.fixture
async def http(sms: SmsEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sms.app)) as client:
        yield client


def make_worker(
    app: CalendarApp, http: httpx.AsyncClient, smtp_port: int, **overrides: Any
) -> Notify:
    settings: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_starttls": False,
        "smtp_tls": False,
        "smtp_from": SENDER,
        "smtp_timeout_seconds": 5.0,
        "sms_api_url": "http://sms.test",
        "sms_account_sid": sms_emulator.SID,
        "sms_auth_token": sms_emulator.TOKEN,
        "sms_from": sms_emulator.SENDER,
        "notify_lease_seconds": 60.0,
        "notify_retry_base_seconds": 30.0,
        "notify_max_attempts": 3,
    }
    settings.update(overrides)
    config = app.deps.config.model_copy(update=settings)
    clock = Clock(datetime.now(UTC) + timedelta(seconds=1))
    deps = replace(app.deps, config=config, http=http)
    return Notify(OutboxWorker(deps, clock=clock), clock)


@pytest.fixture
def notify(app: CalendarApp, http: httpx.AsyncClient, smtp: SmtpServer) -> Notify:
    return make_worker(app, http, smtp.port)


async def set_confirmations(app: CalendarApp, tenant: Tenant, confirmations: Confirmations) -> None:
    settings = await app.agents.get_settings(tenant.account_id, tenant.agent_id)
    await app.agents.save_settings(
        tenant.account_id, replace(settings, confirmations=confirmations)
    )


async def outbox_rows(app: CalendarApp) -> list[t.OutboxMessage]:
    async with app.deps.db.read() as session:
        return list(
            await session.scalars(
                select(t.OutboxMessage).order_by(t.OutboxMessage.created_at, t.OutboxMessage.id)
            )
        )
