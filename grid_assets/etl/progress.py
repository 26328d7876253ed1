"""How far a unit of work has got, for whoever watches it (`grid run` on a terminal).

The units of work report once per batch they have stored, never per line. Nothing listens
unless a caller subscribes with `listening(...)`; without a listener a report costs a loop over
an empty tuple. Kept free of Dagster: the units of work run the same under Dagster, in tests
and in the benchmark.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StepProgress:
    """What one step has stored so far, counted from the start of the step."""

    step: str  # "bronze" or "silver"
    unit: str  # what `done` counts: "lines" (Bronze) or "events" (Silver)
    done: int
    files_done: int = 0  # Bronze: files read to their end (or stopped by an error)
    files_total: int = 0  # Bronze: files with something new to read
    file: str | None = None  # Bronze: the file the last batch came from


Listener = Callable[[StepProgress], None]
_listeners: tuple[Listener, ...] = ()


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call `listener` with every report made while the block runs.

    Reports come from whichever thread stored the batch (Bronze and Silver write on a writer
    thread), so a listener must be thread-safe and quick."""
    global _listeners
    _listeners = (*_listeners, listener)
    try:
        yield
    finally:
        _listeners = tuple(other for other in _listeners if other is not listener)


def report(update: StepProgress) -> None:
    for listener in _listeners:
        try:
            listener(update)
        except Exception:  # a display must never fail the work it displays
            log.debug("Progress listener failed", exc_info=True)
