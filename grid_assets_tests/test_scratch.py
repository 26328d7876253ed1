"""The scratch database of the fast paths, and the helper thread a step lends them: work runs
beside the caller within `helper_thread()`, inline outside it, and no helper outlives its block
(a process forking later would carry it: a test starting `dagster dev` crashed so)."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from grid_assets.scratch import beside, helper_thread, scratch_with


def _helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("grid-helper")]


def _where() -> str:
    return threading.current_thread().name


def _count(name: str) -> int:
    with scratch_with(**{name: pa.table({"x": [1, 2, 3]})}) as db:
        return db.sql(f"SELECT count(*) FROM {name}").fetchall()[0][0]


def _fail() -> None:
    raise ValueError("broken")


def test_outside_a_helper_block_the_work_runs_here() -> None:
    assert beside(_where).result() == threading.current_thread().name
    with pytest.raises(ValueError, match="broken"):
        beside(_fail).result()


def test_within_a_helper_block_the_work_runs_beside_and_the_helper_ends_with_it() -> None:
    with helper_thread():
        assert beside(_where).result().startswith("grid-helper")
        assert beside(_count, "numbers").result() == 3
        with pytest.raises(ValueError, match="broken"):
            beside(_fail).result()
        with helper_thread():  # nested: the same helper
            assert len(_helpers()) == 1
    assert _helpers() == []


def test_each_thread_has_its_own_registrations() -> None:
    with helper_thread(), scratch_with(mine=pa.table({"x": [1]})) as db:
        # The same name registered beside, at the same time, is another table there.
        assert beside(_count, "mine").result() == 3
        assert db.sql("SELECT count(*) FROM mine").fetchall()[0][0] == 1
