"""Bronze ingestion: stream new landing lines into `bronze.events`, keeping every bad line.

Per batch of lines, one unit of work: new events appended, duplicates counted, `event_id`
conflicts and malformed lines dead-lettered to `bronze.rejected_events`, a file that cannot be
read to its end recorded in `bronze.rejected_files`, and the file's progress (lines, byte
offset, fingerprint) saved last. The progress row never claims more than the rows written with
it, so a crash at any moment is followed by a run that resumes exactly there; and every
statement is idempotent, so a batch interrupted on an engine without transactions is redone.

Duplicates and conflicts are decided against the version kept (the first accepted: earlier
runs, then file-name order, then line order), so the outcome does not depend on where batch,
file or run boundaries fall.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection

from grid_assets.etl import progress as step_progress
from grid_assets.etl.batching import cyclic_gc_paused, write_behind
from grid_assets.ingest.arrow import pc
from grid_assets.ingest.chunks import Chunk, ParsedChunk, parse_chunk
from grid_assets.ingest.envelope import Envelope, Rejection
from grid_assets.ingest.envelope_fast import envelope_of
from grid_assets.ingest.landing import (
    HELD_STATES,
    READING,
    UNREADABLE,
    FileRead,
    LandingFile,
    LineBlock,
    Progress,
    RawLine,
    needs_reading,
    scan_landing,
)
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.queries import bronze as q
from grid_assets.queries.bronze import EVENTS, REJECTED
from grid_assets.scratch import helper_thread

log = logging.getLogger(__name__)
BATCH_LINES = 100_000
_INSTANT = pa.timestamp("us", tz="UTC")


@dataclass
class BronzeResult:
    files_seen: int = 0
    files_read: int = 0
    lines_read: int = 0
    blank_lines: int = 0
    events_inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    files_rejected: dict[str, str] = field(default_factory=dict)  # file -> reason

    def count_rejection(self, reason: str) -> None:
        key = reason.split(":", 1)[0]
        self.rejected_by_reason[key] = self.rejected_by_reason.get(key, 0) + 1
        self.rejected += 1


@dataclass
class _Batch:
    """One chunk of lines, parsed and classified, ready to write."""

    chunk: Chunk
    now: datetime
    # The first version of each event_id in the chunk, in line order, numbered by `batch_pos`.
    event_rows: pa.Table | None = None
    # Later lines repeating an event_id of the chunk, with the `batch_pos` of its first version.
    repeats: list[tuple[RawLine, Envelope, int]] = field(default_factory=list)
    rejected: list[tuple[RawLine, str, str | None]] = field(default_factory=list)
    blank_lines: int = 0

    def events_at(self, positions: list[int]) -> list[tuple[RawLine, Envelope]]:
        """The line and envelope of each event at `batch_pos` `positions`, in one take."""
        assert self.event_rows is not None
        rows = self.event_rows.take(np.asarray(positions, np.int64) - 1).to_pylist()
        lines = self.chunk.lines
        first = lines.first_number
        return [(lines.raw_line(row["line_number"] - first), envelope_of(row)) for row in rows]


_ENVELOPE_COLUMNS = {
    "event_id": pa.string(),
    "event_type": pa.string(),
    "occurred_at": _INSTANT,
    "source": pa.string(),
    "payload": pa.string(),
    "envelope_hash": pa.string(),
}


def _classify(chunk: Chunk, parsed: ParsedChunk, now: datetime, run_id: str | None) -> _Batch:
    """Split the chunk's lines into first versions (as rows), repeats, rejections and blanks."""
    batch = _Batch(chunk, now)
    slow: list[tuple[RawLine, Envelope]] = []
    for line, outcome in parsed.others:
        if outcome is None:
            batch.blank_lines += 1
        elif isinstance(outcome, Rejection):
            batch.rejected.append((line, outcome.reason, None))
        else:
            slow.append((line, outcome))
    first_number = chunk.lines.first_number
    certified = parsed.certified
    events = certified.envelopes.cast(pa.schema(_ENVELOPE_COLUMNS))
    positions = certified.index
    if slow:
        lines, envelopes = zip(*slow, strict=True)
        columns = zip(*envelopes, strict=True)
        events = pa.concat_tables(
            [
                events,
                pa.table(
                    {
                        name: pa.array(values, kind)
                        for (name, kind), values in zip(
                            _ENVELOPE_COLUMNS.items(), columns, strict=True
                        )
                    }
                ),
            ]
        )
        positions = np.concatenate(
            [positions, np.array([line.line_number - first_number for line in lines], np.int64)]
        )
    if not len(positions):
        return batch
    # Rows in line order: `order` (the rows themselves are taken once, below, not sorted).
    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    codes = pc.dictionary_encode(events.column("event_id")).combine_chunks().indices.to_numpy()
    codes = codes[order]
    # The first line of each event_id in the chunk is its version here; later ones are repeats.
    _, firsts = np.unique(codes, return_index=True)  # by code: the row of the id's first line
    is_first = np.zeros(len(positions), bool)
    is_first[firsts] = True
    batch_pos = np.cumsum(is_first)  # of each first version (1, 2, ...)
    repeated = np.flatnonzero(~is_first)
    envelopes = events.take(pa.array(order[repeated])).to_pylist()  # one take, not one each
    for row, values in zip(repeated.tolist(), envelopes, strict=True):
        line = chunk.lines.raw_line(int(positions[row]))
        batch.repeats.append((line, envelope_of(values), int(batch_pos[firsts[codes[row]]])))
    rows = events.take(pa.array(order[is_first]))
    count = rows.num_rows
    batch.event_rows = pa.table(
        {
            "batch_pos": pa.array(np.arange(1, count + 1), pa.int64()),
            **{name: rows.column(name) for name in ("event_id", "event_type", "occurred_at")},
            "ingested_at": pa.repeat(pa.scalar(now, _INSTANT), count),
            **{name: rows.column(name) for name in ("source", "payload", "envelope_hash")},
            "source_file": pa.repeat(pa.scalar(chunk.file.name, pa.string()), count),
            "line_number": pa.array(positions[is_first] + first_number, pa.int32()),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), count),
        }
    )
    return batch


def _prepared(chunks: Iterator[Chunk], run_id: str | None) -> Iterator[_Batch]:
    """Read, parse, classify and lay out each chunk: the Python half of every batch."""
    while True:
        with cyclic_gc_paused():
            chunk = next(chunks, None)
            if chunk is None:
                return
            now = datetime.now(UTC)
            batch = _classify(chunk, parse_chunk(chunk), now, run_id)
        yield batch


def _rejected_table(rejected: list[tuple[RawLine, str, str | None]], run_id, now):
    return pa.table(
        {
            "source_file": [line.source_file for line, _, _ in rejected],
            "line_number": pa.array([line.line_number for line, _, _ in rejected], pa.int32()),
            "raw_line": [line.raw for line, _, _ in rejected],
            "reason": [reason for _, reason, _ in rejected],
            "event_id": pa.array([eid for _, _, eid in rejected], pa.string()),
            "rejected_at": pa.repeat(pa.scalar(now, _INSTANT), len(rejected)),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), len(rejected)),
        }
    )


def _write_batch(
    lakehouse: Lakehouse, conn: Connection, batch: _Batch, run_id: str | None, result: BronzeResult
) -> None:
    result.lines_read += len(batch.chunk.lines)
    result.blank_lines += batch.blank_lines
    if batch.event_rows is not None:
        with lakehouse.staged(conn, batch.event_rows, EVENTS) as stage:
            rows = conn.execute(q.stored_versions(stage)).all()
            stored = {position: (h, p) for position, h, p in rows}
            # Each repeat and each event already stored, with the version kept for its id: the
            # stored one, else its first line in this batch.
            candidates: list[tuple[RawLine, Envelope, tuple[str, str]]] = []
            unstored = sorted({first for _, _, first in batch.repeats if first not in stored})
            kept_here = {
                first: (version.envelope_hash, version.payload_text)
                for first, (_, version) in zip(unstored, batch.events_at(unstored), strict=True)
            }
            for line, envelope, first in batch.repeats:
                candidates.append((line, envelope, stored.get(first) or kept_here[first]))
            for (line, envelope), kept in zip(
                batch.events_at(list(stored)), stored.values(), strict=True
            ):
                candidates.append((line, envelope, kept))
            for line, envelope, kept in candidates:
                if envelope.same_content(*kept):
                    result.duplicates += 1
                else:
                    batch.rejected.append((line, "event_id_conflict", envelope.event_id))
            base = int(conn.execute(q.last_ingest_seq()).scalar_one())
            if lakehouse.transactional:  # skip what was found above, by position
                found = pa.table({"batch_pos": pa.array(sorted(stored), pa.int64())})
                with lakehouse.staged(conn, found, EVENTS) as known:
                    conn.execute(q.insert_new_events(stage, base, not stored, stored=known))
            else:  # no transaction: the anti-join makes the statement safe to run again
                conn.execute(q.insert_new_events(stage, base, all_new=not stored))
            result.events_inserted += batch.event_rows.num_rows - len(stored)
    if batch.rejected:
        for _, reason, _ in batch.rejected:
            result.count_rejection(reason)
        rows = _rejected_table(batch.rejected, run_id, batch.now)
        with lakehouse.staged(conn, rows, REJECTED) as stage:
            conn.execute(q.insert_rejected_lines(stage))


def _reject_file(
    conn: Connection,
    name: str,
    reason: str,
    size_bytes: int,
    progress: Progress,
    run_id: str | None,
    now: datetime,
) -> None:
    conn.execute(
        q.insert_rejected_file(
            source_file=name,
            reason=reason,
            size_bytes=size_bytes,
            bytes_read=progress.offset_bytes,
            lines_read=progress.lines_read,
            rejected_at=now,
            run_id=run_id,
        )
    )


def _save_progress(
    conn: Connection, name: str, progress: Progress, run_id: str | None, now: datetime
) -> None:
    conn.execute(q.save_progress(name, progress, run_id, now))


def read_progress(conn: Connection) -> dict[str, Progress]:
    """`bronze.ingested_files`: how far each landing file has been read."""
    rows = conn.execute(q.read_progress())
    return {name: Progress._make(done) for name, *done in rows}


def _chunks(files: list[LandingFile], progress: dict[str, Progress], batch_lines: int):
    """New complete lines of each file, in file-name then line order, `batch_lines` at a time
    (a file's last chunk up to half as many more: see `FileRead.blocks`), each with the
    progress to record once it is stored. Every opened file yields at least one chunk (maybe
    empty), so that what its reader found is recorded."""
    for file in files:
        reader = FileRead(file, progress[file.name]) if file.name in progress else FileRead(file)
        blocks = reader.blocks(batch_lines)
        block = next(blocks, None) or LineBlock.empty(file.name, reader.lines_read + 1)
        while True:
            at_block_end = reader.progress()  # before reading ahead: covers `block` exactly
            following = next(blocks, None)
            if following is None:
                yield Chunk(file, block, reader.progress(), reader.error)
                break
            yield Chunk(file, block, at_block_end)
            block = following


def _record_unreadable_entries(
    conn: Connection,
    entries,
    present: set[str],
    progress: dict[str, Progress],
    run_id: str | None,
    result: BronzeResult,
) -> None:
    now = datetime.now(UTC)
    for entry in entries:
        done = progress.get(entry.name)
        held = (done or Progress(0, 0, 0, 0, UNREADABLE, ""))._replace(
            state=UNREADABLE, size_bytes=entry.size_bytes, tail_bytes=0
        )
        _reject_file(conn, entry.name, entry.reason, entry.size_bytes, held, run_id, now)
        _save_progress(conn, entry.name, held, run_id, now)
        result.files_rejected[entry.name] = entry.reason
        log.warning("Landing entry %s cannot be read: %s", entry.name, entry.reason)
    gone = [n for n, p in progress.items() if p.state in HELD_STATES and n not in present]
    if gone:
        conn.execute(q.mark_removed(gone, run_id))


def ingest_landing(
    lakehouse: Lakehouse,
    landing_dir: Path,
    run_id: str | None = None,
    batch_lines: int = BATCH_LINES,
) -> BronzeResult:
    """Ingest every new complete line of every landing file, in file-name then line order."""
    result = BronzeResult()
    # One connection for the whole step (a transaction per batch): closing a DuckDB connection
    # checkpoints the file, which per batch cost more than the writes themselves.
    with lakehouse.connect() as conn:
        with conn.begin():
            progress = read_progress(conn)
        files, unreadable = scan_landing(landing_dir)
        present = {f.name for f in files} | {e.name for e in unreadable}
        if unreadable or any(p.state in HELD_STATES for p in progress.values()):
            with conn.begin():
                _record_unreadable_entries(conn, unreadable, present, progress, run_id, result)
        changed = [f for f in files if needs_reading(f.size_bytes, progress.get(f.name))]
        result.files_seen, result.files_read = len(files) + len(unreadable), len(changed)
        files_done = 0
        step_progress.report(step_progress.StepProgress("bronze", "lines", 0, 0, len(changed)))

        def write(batch: _Batch) -> None:  # on the writer thread, the only user of `conn`
            chunk = batch.chunk
            with conn.begin():
                _write_batch(lakehouse, conn, batch, run_id, result)
                if chunk.error is not None:
                    size = chunk.file.size_bytes
                    _reject_file(
                        conn, chunk.file.name, chunk.error, size, chunk.progress, run_id, batch.now
                    )
                    result.files_rejected[chunk.file.name] = chunk.error
                    log.warning(
                        "Landing file %s stops after line %d (byte %d): %s",
                        chunk.file.name,
                        chunk.progress.lines_read,
                        chunk.progress.offset_bytes,
                        chunk.error,
                    )
                _save_progress(conn, chunk.file.name, chunk.progress, run_id, batch.now)
            nonlocal files_done
            files_done += chunk.progress.state != READING  # the file's last chunk
            step_progress.report(
                step_progress.StepProgress(
                    "bronze", "lines", result.lines_read, files_done, len(changed), chunk.file.name
                )
            )

        with helper_thread():  # the fast path's second thread, for this step only
            write_behind(_prepared(_chunks(changed, progress, batch_lines), run_id), write)
    return result
