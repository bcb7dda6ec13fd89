"""Request ids (AIP-155): one outcome per (account, request_id), shared by every replica.

A record is inserted IN_PROGRESS before any work that may not run twice, so a concurrent
duplicate sees it (the primary key refuses a second insert) and waits: in its own transaction
(``begin``), or, for Book, inside the claim's transaction together with the resource it is tied
to (``claim_in``). The resource id is attached as soon as the resource exists and the record
becomes DONE when the work ends; replays re-read that resource, so they see its current state.
When the work fails with a definite error the record is deleted: a retry runs afresh. A record
left IN_PROGRESS by a crashed process is taken over after ``STALE_AFTER``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.deadline import Deadline
from service.errors import InvalidArgument, RequestIdReused, RequestInProgress
from service.scheduling.deps import Deps
from service.store import tables as t

T = TypeVar("T")

IN_PROGRESS = "IN_PROGRESS"
DONE = "DONE"
POLL_SECONDS = 0.05
# How long a duplicate waits for the first call before answering REQUEST_IN_PROGRESS.
WAIT_SECONDS = 3.0
# An IN_PROGRESS record this old belongs to a process that died.
STALE_AFTER = timedelta(seconds=60)


def request_hash(method: str, payload: dict[str, Any]) -> str:
    body = json.dumps({"method": method, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Claimed:
    """This call owns the request id and must finish it."""


@dataclass(frozen=True, slots=True)
class Replayed:
    resource_id: str


def check_request_id(request_id: str) -> None:
    if len(request_id) > 100:
        raise InvalidArgument("request_id", "must be at most 100 characters (a UUID4 is best)")


class Idempotency:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def begin(
        self, account_id: str, request_id: str, method: str, digest: str, deadline: Deadline
    ) -> Claimed | Replayed:
        check_request_id(request_id)
        waited = 0.0
        while True:
            try:
                async with self._deps.db.write() as session:
                    row = await session.get(t.IdempotencyRecord, (account_id, request_id))
                    if row is None:
                        session.add(
                            t.IdempotencyRecord(
                                account_id=account_id,
                                request_id=request_id,
                                method=method,
                                request_hash=digest,
                                state=IN_PROGRESS,
                            )
                        )
                        return Claimed()
                    if row.method != method or row.request_hash != digest:
                        raise RequestIdReused(request_id)
                    if row.state == DONE and row.response is not None:
                        return Replayed(row.response.decode())
                    if row.updated_at < self._deps.clock() - STALE_AFTER:
                        if row.response is not None:
                            return Replayed(row.response.decode())
                        row.updated_at = self._deps.clock()
                        return Claimed()
            except IntegrityError:
                pass  # A concurrent duplicate inserted first; read its record next time round.
            budget = min(WAIT_SECONDS, deadline.remaining() - 0.2)
            if waited >= budget:
                raise RequestInProgress(request_id, retry_after=1.0)
            await asyncio.sleep(POLL_SECONDS)
            waited += POLL_SECONDS

    async def exists(self, account_id: str, request_id: str) -> bool:
        """A read, no write lock: most request ids are new, and those skip ``begin``'s own
        transaction by claiming the id inside the work's first transaction (``claim_in``)."""
        check_request_id(request_id)
        async with self._deps.db.read() as session:
            state = await session.scalar(
                select(t.IdempotencyRecord.state).where(
                    t.IdempotencyRecord.account_id == account_id,
                    t.IdempotencyRecord.request_id == request_id,
                )
            )
        return state is not None

    async def claim_in(
        self,
        session: AsyncSession,
        account_id: str,
        request_id: str,
        method: str,
        digest: str,
        resource_id: str,
    ) -> bool:
        """Inserts the record IN_PROGRESS, already tied to its resource, inside the caller's
        transaction. False when a concurrent duplicate holds the id: the caller rolls back and
        goes through ``begin``. ON CONFLICT DO NOTHING keeps the transaction usable on
        PostgreSQL, where a failed INSERT would abort it."""
        dialect = postgresql if self._deps.db.is_postgres else sqlite
        result = await session.execute(
            dialect.insert(t.IdempotencyRecord)
            .values(
                account_id=account_id,
                request_id=request_id,
                method=method,
                request_hash=digest,
                state=IN_PROGRESS,
                response=resource_id.encode(),
            )
            .on_conflict_do_nothing()
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    @staticmethod
    async def finish(
        session: AsyncSession, account_id: str, request_id: str, resource_id: str
    ) -> None:
        # One UPDATE, no read first: this runs inside Book's confirming transaction.
        await session.execute(
            update(t.IdempotencyRecord)
            .where(
                t.IdempotencyRecord.account_id == account_id,
                t.IdempotencyRecord.request_id == request_id,
            )
            .values(state=DONE, response=resource_id.encode())
        )

    @staticmethod
    async def attach(
        session: AsyncSession, account_id: str, request_id: str, resource_id: str
    ) -> None:
        """Ties the record to its resource; duplicates keep waiting until ``finish``."""
        await session.execute(
            update(t.IdempotencyRecord)
            .where(
                t.IdempotencyRecord.account_id == account_id,
                t.IdempotencyRecord.request_id == request_id,
            )
            .values(response=resource_id.encode())
        )

    async def once(
        self,
        account_id: str,
        request_id: str,
        method: str,
        payload: dict[str, Any],
        deadline: Deadline,
        run: Callable[[], Awaitable[T]],
        resource_id: Callable[[T], str],
        load: Callable[[str], Awaitable[T]],
    ) -> T:
        """Runs ``run`` at most once per request id (for creations without a claim step)."""
        if not request_id:
            return await run()
        outcome = await self.begin(
            account_id, request_id, method, request_hash(method, payload), deadline
        )
        if isinstance(outcome, Replayed):
            return await load(outcome.resource_id)
        try:
            result = await run()
        except BaseException:
            await self.abandon(account_id, request_id)
            raise
        async with self._deps.db.write() as session:
            await self.finish(session, account_id, request_id, resource_id(result))
        return result

    async def abandon(self, account_id: str, request_id: str) -> None:
        async with self._deps.db.write() as session:
            await self.forget(session, account_id, request_id)

    @staticmethod
    async def forget(session: AsyncSession, account_id: str, request_id: str) -> None:
        await session.execute(
            delete(t.IdempotencyRecord).where(
                t.IdempotencyRecord.account_id == account_id,
                t.IdempotencyRecord.request_id == request_id,
            )
        )

    @staticmethod
    async def forget_resource(session: AsyncSession, account_id: str, resource_id: str) -> None:
        ids = await session.scalars(
            select(t.IdempotencyRecord.request_id).where(
                t.IdempotencyRecord.account_id == account_id,
                t.IdempotencyRecord.response == resource_id.encode(),
            )
        )
        for request_id in list(ids):
            await Idempotency.forget(session, account_id, request_id)
