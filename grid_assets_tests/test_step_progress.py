"""Tier 2: the units of work report their progress once per stored batch, never per line."""

from __future__ import annotations

from pathlib import Path

from grid_assets.etl import progress
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.progress import StepProgress
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets_tests.conftest import write_events


def beats(prefix: str, n: int) -> list[dict]:
    return [
        {
            "event_id": f"{prefix}{i}",
            "event_type": "system.heartbeat",
            "occurred_at": f"2026-01-01T00:{i:02d}:00Z",
            "payload": {},
        }
        for i in range(n)
    ]


def test_bronze_and_silver_report_each_stored_batch(tmp_path: Path, lakehouse: Lakehouse) -> None:
    landing = tmp_path / "landing"
    write_events(landing / "a.ndjson", beats("a", 5))
    write_events(landing / "b.ndjson", beats("b", 2))
    seen: list[StepProgress] = []
    with progress.listening(seen.append):
        ingest_landing(lakehouse, landing, batch_lines=2)
        apply_new_events(lakehouse, batch_events=4)
    bronze = [(u.done, u.files_done, u.files_total, u.file) for u in seen if u.step == "bronze"]
    # A start, then one report per batch of 2 lines (a file's last batch takes up to half a
    # batch more): 5 lines in 2 and 3, then 2 lines in 1.
    assert bronze == [
        (0, 0, 2, None),
        (2, 0, 2, "a.ndjson"),
        (5, 1, 2, "a.ndjson"),
        (7, 2, 2, "b.ndjson"),
    ]
    silver = [u.done for u in seen if u.step == "silver"]
    assert silver == [0, 4, 7] and {u.unit for u in seen if u.step == "silver"} == {"events"}


def test_without_a_listener_nothing_is_called_and_a_failing_one_is_contained() -> None:
    def broken(update: StepProgress) -> None:
        raise RuntimeError("display gone")

    progress.report(StepProgress("bronze", "lines", 1))  # nobody listens: nothing happens
    calls: list[int] = []
    with progress.listening(broken), progress.listening(lambda u: calls.append(u.done)):
        progress.report(StepProgress("bronze", "lines", 3))
    progress.report(StepProgress("bronze", "lines", 4))
    assert calls == [3]
