"""Re-encrypt stored credentials with the primary key after a key is rotated in."""

from __future__ import annotations

from sqlalchemy import select

from service.scheduling.deps import Deps
from service.store import tables as t


async def rotate_credentials(deps: Deps) -> int:
    count = 0
    async with deps.db.write() as session:
        rows = await session.scalars(
            select(t.Connection).where(t.Connection.credentials.is_not(None))
        )
        for row in rows:
            assert row.credentials is not None
            if deps.cipher.is_current(row.credentials):
                continue
            plain = deps.cipher.decrypt(row.credentials, context=row.id)
            row.credentials = deps.cipher.encrypt(plain, context=row.id)
            count += 1
    return count
