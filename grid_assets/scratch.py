"""A private in-memory DuckDB for the fast paths' columnar work: never the lakehouse.

One per thread (a DuckDB connection is not to be shared between threads), opened on first use
and kept: opening one costs about 30 ms, which per batch was more than the work it did. One
thread of its own, so that it runs beside the lakehouse's writes rather than against them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

_local = threading.local()


def scratch_db() -> Any:
    db = getattr(_local, "db", None)
    if db is None:
        db = _local.db = duckdb.connect(config={"threads": 1})
    return db


@contextmanager
def scratch_with(**tables: Any) -> Iterator[Any]:
    """This thread's scratch database with `tables` (Arrow tables) registered under their names
    for the block, unregistered after it."""
    db = scratch_db()
    for name, table in tables.items():
        db.register(name, table)
    try:
        yield db
    finally:
        for name in tables:
            db.unregister(name)
