"""Query helpers shared by the services."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Integer, Select, any_, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement


def among(column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN (ids)` as one array parameter (`column = ANY($1)`). asyncpg allows
    at most 32,767 parameters in a query, and an IN list spends one per id: a
    50,000-job extraction failed with it (found by bench/extraction/sql.py)."""
    return column == any_(literal(list(ids), type_=ARRAY(Integer)))


async def fetch_page(
    session: AsyncSession, stmt: Select[Any], *, limit: int, offset: int
) -> tuple[list[Any], int]:
    """One page of an ordered query, and how many rows the whole query has. The
    page holds entities when the query selects one, rows otherwise. The count costs
    a second query only when the page does not tell it (a full page, or an empty
    one past the start)."""
    result = await session.execute(stmt.limit(limit).offset(offset))
    rows: list[Any] = list(result.scalars() if len(stmt.column_descriptions) == 1 else result)
    if 0 < len(rows) < limit or (offset == 0 and not rows):
        return rows, offset + len(rows)
    counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    return rows, (await session.execute(counted)).scalar_one()
