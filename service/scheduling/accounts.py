"""Accounts (tenants), their plans, and API keys.

Keys are 32 random bytes, so a SHA-256 digest is as safe to store as a slow password hash and
costs microseconds; the digest lookup is cached per process for ``auth_cache_seconds`` so the
hot path does not touch the database to authenticate.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from uuid import uuid4

from sqlalchemy import select

from service.errors import InvalidArgument, PlanRequired, Unauthenticated
from service.model import CALENDAR_PLANS, Plan, Principal
from service.scheduling.deps import Deps
from service.store import tables as t

KEY_PREFIX = "gck_"


def digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_account(deps: Deps, name: str, plan: Plan) -> tuple[str, str]:
    """Create an account and its first API key; returns (account id, key). The key is shown once."""
    account_id = uuid4().hex
    async with deps.db.write() as session:
        session.add(t.Account(id=account_id, name=name, plan=plan.value))
    return account_id, await issue_key(deps, account_id)


async def issue_key(deps: Deps, account_id: str) -> str:
    key = new_api_key()
    async with deps.db.write() as session:
        if await session.get(t.Account, account_id) is None:
            raise InvalidArgument("account_id", "no such account")
        session.add(
            t.ApiKey(id=uuid4().hex, account_id=account_id, digest=digest(key), prefix=key[:10])
        )
    return key


def require_calendar_plan(principal: Principal) -> None:
    if principal.plan not in CALENDAR_PLANS:
        raise PlanRequired(principal.plan.value, [p.value for p in CALENDAR_PLANS])


class Authenticator:
    """Resolves ``Bearer`` keys to principals, with a small TTL cache of verified digests."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._ttl = deps.config.auth_cache_seconds
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing authorization metadata (expected 'Bearer <api key>')")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthenticated("authorization metadata must be 'Bearer <api key>'")
        key_digest = digest(key)
        hit = self._cache.get(key_digest)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self._deps.db.read() as session:
            row = (
                await session.execute(
                    select(t.Account.id, t.Account.plan)
                    .join(t.ApiKey, t.ApiKey.account_id == t.Account.id)
                    .where(t.ApiKey.digest == key_digest, t.ApiKey.revoked_at.is_(None))
                )
            ).first()
        if row is None:
            self._cache.pop(key_digest, None)
            raise Unauthenticated("unknown or revoked API key")
        principal = Principal(account_id=row[0], plan=Plan(row[1]))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_digest] = (principal, now + self._ttl)
        return principal
