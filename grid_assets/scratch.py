"""A private in-memory DuckDB for the fast paths' columnar work: never the lakehouse.

One per thread (a DuckDB connection is not to be shared between threads), opened on first use
and kept: opening one costs about 30 ms, which per batch was more than the work it did. One
thread of its own, so that it runs beside the lakehouse's writes rather than against them.

`helper_thread()` gives the thread that enters it one more thread for a while: `beside` runs a
piece of columnar work there while the caller goes on (DuckDB and Arrow release the GIL). The
helper and its scratch database end with the block, so no thread outlives a step (a process that
forks later, a test starting a server say, forks without it). Outside such a block `beside`
runs the work at once, on the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import duckdb

T = TypeVar("T")

_local = threading.local()


def scratch_db() -> Any:
    db = getattr(_local, "db", None)
    if db is None:
        db = _local.db = duckdb.connect(config={"threads": 1})
    return db


def _close_scratch_db() -> None:
    db = getattr(_local, "db", None)
    if db is not None:
        del _local.db
        db.close()


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


@contextmanager
def helper_thread() -> Iterator[None]:
    """One helper thread for `beside` calls made by this thread within the block."""
    if getattr(_local, "helper", None) is not None:  # nested: the outer block's helper serves
        yield
        return
    helper = _local.helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="grid-helper")
    try:
        yield
    finally:
        del _local.helper
        helper.submit(_close_scratch_db)
        helper.shutdown(wait=True)


def beside(work: Callable[..., T], *args: Any) -> Future[T]:
    """`work(*args)` on this thread's helper (see `helper_thread`), or here and now without one;
    its result, or its exception, is the future's."""
    helper: ThreadPoolExecutor | None = getattr(_local, "helper", None)
    if helper is not None:
        return helper.submit(work, *args)
    done: Future[T] = Future()
    try:
        done.set_result(work(*args))
    except Exception as exc:
        done.set_exception(exc)
    return done
