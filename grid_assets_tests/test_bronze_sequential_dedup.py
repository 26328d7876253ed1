"""Duplicate or conflict is decided against the version kept, whatever the boundaries.

The same stream of lines, cut into any batch size, any number of files and any number of runs
(files growing between runs), must give the Bronze tables of a plain sequential reading: a line
is a duplicate exactly when its JSON value equals the version kept (the first accepted one),
and a conflict otherwise."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.ingest.envelope import Envelope, Rejection, parse_line
from grid_assets.models.bronze import Event, RejectedEvent
from grid_assets.resources.lakehouse import LakehouseResource

EVENTS = Event.__table__
REJECTED = RejectedEvent.__table__
IDS = ["a", "b", "c"]


def _spellings(event_id: str, version: int) -> list[str]:
    """Lines holding one JSON value, spelled differently (key order, spacing, 2.5 vs 2.50)."""
    envelope = {
        "event_id": event_id,
        "event_type": "order.paid",
        "occurred_at": "2026-01-01T00:00:00Z",
        "payload": {"order_id": event_id, "amount": version + 0.5},
    }
    compact = json.dumps(envelope, separators=(",", ":"))
    return [
        compact,
        json.dumps(dict(reversed(list(envelope.items())))),
        compact.replace(f'"amount":{version}.5', f'"amount":{version}.50'),
    ]


_line = st.one_of(
    st.tuples(st.sampled_from(IDS), st.integers(0, 2), st.integers(0, 2)).map(
        lambda t: _spellings(t[0], t[1])[t[2]]
    ),
    st.tuples(st.sampled_from(IDS), st.sampled_from(["x", "y"])).map(
        lambda t: json.dumps(
            {
                "event_id": t[0],
                "event_type": "order.paid",
                "occurred_at": "2026-01-01T00:00:00Z",
                "source": t[1],  # the same payload under another envelope: a conflict
                "payload": {"order_id": t[0], "amount": 0.5},
            }
        )
    ),
    st.sampled_from(["", "not json", '{"event_id":"a"}']),
)


def _reference(lines: list[str]) -> tuple[list[tuple[str, int]], list[tuple[int, str]]]:
    """(event_id, position) kept in order, and (position, reason) rejected: read sequentially."""
    kept: dict[str, Envelope] = {}
    events, rejected = [], []
    for position, text in enumerate(lines):
        parsed = parse_line(text)
        if parsed is None:
            continue
        if isinstance(parsed, Rejection):
            rejected.append((position, parsed.reason))
        elif parsed.event_id not in kept:
            kept[parsed.event_id] = parsed
            events.append((parsed.event_id, position))
        elif not kept[parsed.event_id].same_content(parsed.envelope_hash, parsed.payload_text):
            rejected.append((position, "event_id_conflict"))
    return events, rejected


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lines=st.lists(_line, min_size=1, max_size=40),
    file_cuts=st.lists(st.integers(0, 40), max_size=3),
    run_cuts=st.lists(st.integers(0, 40), max_size=3),
    batch_lines=st.one_of(st.integers(1, 4), st.integers(1, 50_000)),
)
def test_classification_ignores_batch_file_and_run_boundaries(
    lines: list[str], file_cuts: list[int], run_cuts: list[int], batch_lines: int
) -> None:
    n = len(lines)
    starts = sorted({0, *(c % n for c in file_cuts)})
    files = [(f"f{i:02d}.ndjson", start) for i, start in enumerate(starts)]
    ends = [start for _, start in files[1:]] + [n]
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp) / "landing"
        landing.mkdir()
        lh = LakehouseResource(duckdb_path=str(Path(tmp) / "lh.duckdb")).get_lakehouse()
        lh.create_tables()
        # Each run sees a longer prefix of the stream: whole files, then part of one.
        for upto in [*sorted(c % (n + 1) for c in run_cuts), n]:
            for (name, start), end in zip(files, ends, strict=True):
                if start < upto:
                    text = "".join(line + "\n" for line in lines[start : min(end, upto)])
                    (landing / name).write_text(text)
            ingest_landing(lh, landing, batch_lines=batch_lines)
        position = {name: start for name, start in files}
        with lh.connect() as conn:
            stored = [
                (event_id, position[f] + line - 1)
                for event_id, f, line in conn.execute(
                    select(EVENTS.c.event_id, EVENTS.c.source_file, EVENTS.c.line_number).order_by(
                        EVENTS.c.ingest_seq
                    )
                )
            ]
            dead = sorted(
                (position[f] + line - 1, reason)
                for f, line, reason in conn.execute(
                    select(REJECTED.c.source_file, REJECTED.c.line_number, REJECTED.c.reason)
                )
            )
            seqs = list(conn.execute(select(EVENTS.c.ingest_seq).order_by(EVENTS.c.ingest_seq)))
        lh.engine.dispose()
    events, rejected = _reference(lines)
    assert stored == events
    assert dead == rejected
    assert [s for (s,) in seqs] == list(range(1, len(events) + 1))  # arrival order, no gaps
