"""Tier 1: the batch loop helpers: writes in order, failures surfaced, the collector restored."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator

import pytest

from grid_assets.etl.batching import cyclic_gc_paused, write_behind


def test_batches_are_written_in_order_on_one_other_thread() -> None:
    written: list[tuple[int, str]] = []
    write_behind(range(5), lambda n: written.append((n, threading.current_thread().name)))
    assert [n for n, _ in written] == [0, 1, 2, 3, 4]
    threads = {name for _, name in written}
    assert len(threads) == 1 and threading.current_thread().name not in threads


def test_the_next_batch_is_built_while_the_previous_one_is_written() -> None:
    """Building and writing overlap, but never more than one write is in flight."""
    log: list[str] = []
    next_built = threading.Event()
    in_flight = threading.Semaphore(1)

    def batches() -> Iterator[int]:
        for n in range(3):
            log.append(f"built {n}")
            if n == 1:
                next_built.set()
            yield n

    def write(n: int) -> None:
        assert in_flight.acquire(blocking=False), "two writes at once"
        if n == 0:
            # Batch 1 gets built while batch 0 is being written (or this would time out).
            assert next_built.wait(timeout=10)
        log.append(f"wrote {n}")
        in_flight.release()

    write_behind(batches(), write)
    # Batch 2 is only built once batch 0's write has ended.
    assert log.index("built 1") < log.index("wrote 0") < log.index("built 2")
    assert log[-1] == "wrote 2"


def test_a_failed_write_stops_the_loop_and_is_raised() -> None:
    built: list[int] = []

    def batches() -> Iterator[int]:
        for n in range(10):
            built.append(n)
            yield n

    def write(n: int) -> None:
        if n == 1:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_behind(batches(), write)
    assert built == [0, 1, 2]  # batch 2 was built while batch 1 failed; nothing after it


def test_a_failed_build_waits_for_the_write_in_flight() -> None:
    finished: list[int] = []

    def batches() -> Iterator[int]:
        yield 0
        raise ValueError("bad line")

    def write(n: int) -> None:
        time.sleep(0.05)
        finished.append(n)

    with pytest.raises(ValueError, match="bad line"):
        write_behind(batches(), write)
    assert finished == [0]  # the connection is never closed under a running write


def test_the_cycle_collector_is_paused_then_restored() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(KeyError), cyclic_gc_paused():
        raise KeyError("x")
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice is left alone
    finally:
        gc.enable()
