"""A real provider with scripted misbehaviour, for failure paths no real calendar will produce
on demand (a refusal, a timeout, a slow answer, an event that went missing)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from service.deadline import Deadline
from service.errors import ProviderUnavailable
from service.providers.base import CalendarProvider, EventRef, EventRequest
from service.scheduling.app import CalendarApp
from service.scheduling.deps import Deps
from service.scheduling.registry import default_provider
from service.slots import Interval
from service.store import tables as t


class Wrapped:
    """The real built-in provider with scripted misbehaviour on the calls under test."""

    def __init__(self, inner: CalendarProvider, script: dict[str, object]) -> None:
        self._inner = inner
        self._script = script
        self.kind = inner.kind
        self.availability_shape = inner.availability_shape

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def busy(
        self, calendar_ids: tuple[str, ...], start: datetime, end: datetime, deadline: Deadline
    ) -> tuple[Interval, ...]:
        delay = self._script.get("busy_delay")
        delays = self._script.get("busy_delays")  # one per call, in order
        if isinstance(delays, list) and delays:
            delay = delays.pop(0)
        if isinstance(delay, float):
            await asyncio.sleep(delay)
        return await self._inner.busy(calendar_ids, start, end, deadline)

    async def create_event(self, request: EventRequest, deadline: Deadline) -> EventRef:
        delay = self._script.get("delay")
        if isinstance(delay, float):
            await asyncio.sleep(delay)
        error = self._script.get("create_error")
        if isinstance(error, Exception):
            raise error
        return await self._inner.create_event(request, deadline)

    async def move_event(
        self, ref: EventRef, request: EventRequest, deadline: Deadline
    ) -> EventRef:
        moved = await self._inner.move_event(ref, request, deadline)
        leftovers = self._script.get("leftovers")
        if isinstance(leftovers, tuple):
            return EventRef(moved.reference, leftovers=leftovers)
        return moved

    async def cancel_event(self, ref: EventRef, deadline: Deadline) -> None:
        failures = self._script.get("cancel_failures")
        if isinstance(failures, int) and failures > 0:
            self._script["cancel_failures"] = failures - 1
            raise ProviderUnavailable(self.kind.value, "cancel failed")
        cancelled = self._script.setdefault("cancelled", [])
        assert isinstance(cancelled, list)
        cancelled.append(ref.reference)
        await self._inner.cancel_event(ref, deadline)

    async def find_event(self, appointment_id: str, deadline: Deadline) -> EventRef | None:
        if self._script.get("find") == "missing":
            return None
        return await self._inner.find_event(appointment_id, deadline)


def script_provider(app: CalendarApp, script: dict[str, object]) -> None:
    def factory(deps: Deps, row: t.Connection) -> CalendarProvider:
        return Wrapped(default_provider(deps, row), script)  # type: ignore[return-value]

    app.deps.provider_factory = factory
