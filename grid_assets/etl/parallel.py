"""Ordered, bounded fan-out of CPU-bound parsing to worker processes.

Parsing JSON and validating rows is pure Python and holds the GIL, so on large inputs it is
spread over processes while the parent writes the previous batch. Results come back in input
order (ingestion order is part of the contract) and at most `in_flight` batches are held at
once, so memory stays bounded whatever the input size.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

WORKERS_VAR = "GRID_PARSE_WORKERS"


def default_workers() -> int:
    """`GRID_PARSE_WORKERS` if set (1 disables the pool), else the machine's cores, at most 4."""
    raw = os.environ.get(WORKERS_VAR, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return max(1, min(4, os.cpu_count() or 1))


@contextmanager
def ordered_map(
    fn: Callable[[T], R], workers: int
) -> Iterator[Callable[[Iterable[T]], Iterator[R]]]:
    """Yield a `map` that applies `fn` in `workers` processes (in this one when workers <= 1),
    returning results in input order with at most `workers + 1` items in flight."""
    if workers <= 1:
        yield lambda items: map(fn, items)
        return
    # spawn, not fork: the parent may hold database connections and Dagster threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:

        def mapped(items: Iterable[T]) -> Iterator[R]:
            pending: deque[Future[R]] = deque()
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

        yield mapped
