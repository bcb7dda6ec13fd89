"""Reading one row that must belong to the caller's account.

Every lookup by id goes through here, so "another account's id answers NOT_FOUND" holds in one
place rather than in each use case.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.errors import InvalidArgument, NotFound


class _AccountRow(Protocol):
    id: InstrumentedAttribute[str]
    account_id: InstrumentedAttribute[str]


Row = TypeVar("Row")


async def owned(
    session: AsyncSession,
    table: type[Row],
    row_id: str,
    account_id: str,
    *,
    resource_type: str,
    field: str,
) -> Row:
    """The row with ``row_id`` in ``account_id``; INVALID_ARGUMENT when no id was given."""
    if not row_id:
        raise InvalidArgument(field, "is required")
    columns: _AccountRow = table  # type: ignore[assignment]
    row = await session.scalar(
        select(table).where(columns.id == row_id, columns.account_id == account_id)
    )
    if row is None:
        raise NotFound(resource_type, row_id)
    return row
