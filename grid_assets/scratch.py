"""A private in-memory DuckDB for the fast paths' columnar work: never the lakehouse.

One per thread (a DuckDB connection is not to be shared between threads), opened on first use
and kept: opening one costs about 30 ms, which per batch was more than the work it did. One
thread of its own, so that it runs beside the lakehouse's writes rather than against them.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb

_local = threading.local()


def scratch_db() -> Any:
    db = getattr(_local, "db", None)
    if db is None:
        db = _local.db = duckdb.connect(config={"threads": 1})
    return db
