"""Statement shapes every layer uses: the idempotent append and the one-row literal source."""

from __future__ import annotations

from sqlalchemy import Insert, exists, insert, literal, select
from sqlalchemy.sql import FromClause


def insert_missing(target, stage: FromClause, keys: list[str], *within) -> Insert:
    """INSERT ... SELECT of staged rows whose key is not in `target` yet (idempotent append).
    `within`: conditions on `target` that every row holding a staged key meets, so that the
    lookup reads only those rows."""
    columns = [c.name for c in stage.c if c.name in target.c]
    query = select(*(stage.c[c] for c in columns)).where(
        ~exists().where(*(target.c[k] == stage.c[k] for k in keys), *within)
    )
    return insert(target).from_select(columns, query)


def literal_row(**values) -> FromClause:
    """A one-row relation of literal values, aliased `s`, for single-row MERGEs."""
    return select(*(literal(v).label(k) for k, v in values.items())).subquery("s")
