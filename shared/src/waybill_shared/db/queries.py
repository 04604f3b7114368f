"""Query helpers shared by the services."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Integer, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement


def among(column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN (ids)` as one array parameter (`column = ANY($1)`). asyncpg allows
    at most 32,767 parameters in a query, and an IN list spends one per id: a
    50,000-job extraction failed with it (found by bench/extraction/sql.py)."""
    return column == any_(literal(list(ids), type_=ARRAY(Integer)))
