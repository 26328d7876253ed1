"""Helpers shared by the batch loops of the ETL steps."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import pyarrow as pa

T = TypeVar("T")

# Arrow's buffers come from the C library's allocator, like numpy's and Python's, unless the
# environment chooses one (`ARROW_DEFAULT_MEMORY_POOL`). Arrow's default (mimalloc) keeps what
# a batch frees for its own reuse, beside what the C library keeps: `grid run` on 10^6 events
# peaked ~80 MiB higher with it, in the same time.
if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
    pa.set_memory_pool(pa.system_memory_pool())


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while one batch of rows is built.

    A batch is tens of thousands of small, acyclic containers (parsed lines, row lists) that
    reference counting frees on its own; the cycle collector would walk them again and again
    as they pile up, which measured about a third of Bronze's parsing time at 10^6 lines.
    The collector resumes (and catches up) when the batch is built.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def write_behind(batches: Iterable[T], write: Callable[[T], None]) -> None:
    """`write` every batch, in order, on a writer thread while the next batch is being built.

    The engine releases the GIL while it executes SQL, so the writes of one batch overlap the
    Python that parses the next. At most one batch is being written while one is built, so
    memory stays at about two batches. A failed write stops the loop and is raised here; a
    failure while building waits for the write in flight before it is raised.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="grid-writer") as writer:
        pending: Future[None] | None = None
        for batch in batches:
            if pending is not None:
                pending.result()
            pending = writer.submit(write, batch)
        if pending is not None:
            pending.result()
