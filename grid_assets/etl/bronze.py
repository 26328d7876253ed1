"""Bronze ingestion: stream new landing lines into `bronze.events`, keeping every bad line.

Per batch of lines, one unit of work: new events appended, duplicates counted, `event_id`
conflicts and malformed lines dead-lettered to `bronze.rejected_events`, and the file's read
position advanced. Every statement is idempotent, so a batch interrupted on an engine without
transactions is simply redone by the next run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from sqlalchemy import Connection, literal, select

from grid_assets.etl.batching import cyclic_gc_paused, write_behind
from grid_assets.ingest.chunks import Chunk, Parsed, parse_chunk
from grid_assets.ingest.envelope import Envelope, Rejection
from grid_assets.ingest.landing import LandingFile, RawLine, list_landing_files, read_lines
from grid_assets.models.bronze import Event, IngestedFile, RejectedEvent
from grid_assets.queries.dialect import Merge
from grid_assets.queries.silver import insert_missing, last_ingest_seq, literal_row
from grid_assets.resources.lakehouse import Lakehouse

EVENTS = Event.__table__
REJECTED = RejectedEvent.__table__
FILES = IngestedFile.__table__
BATCH_LINES = 50_000
_INSTANT = pa.timestamp("us", tz="UTC")


@dataclass
class BronzeResult:
    files_seen: int = 0
    files_read: int = 0
    lines_read: int = 0
    blank_lines: int = 0
    events_inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    def count_rejection(self, reason: str) -> None:
        key = reason.split(":", 1)[0]
        self.rejected_by_reason[key] = self.rejected_by_reason.get(key, 0) + 1
        self.rejected += 1


@dataclass
class _Batch:
    """One chunk of lines, parsed and classified, ready to write."""

    chunk: Chunk
    now: datetime
    events: list[tuple[RawLine, Envelope]] = field(default_factory=list)
    rejected: list[tuple[RawLine, str, str | None]] = field(default_factory=list)
    blank_lines: int = 0
    duplicates: int = 0  # repeats of an event earlier in the same chunk
    event_rows: pa.Table | None = None


def _classify(chunk: Chunk, parsed_lines: list[Parsed], now: datetime) -> _Batch:
    batch = _Batch(chunk, now)
    seen: dict[str, Envelope] = {}
    for line, parsed in parsed_lines:
        if parsed is None:
            batch.blank_lines += 1
        elif isinstance(parsed, Rejection):
            batch.rejected.append((line, parsed.reason, None))
        elif parsed.event_id not in seen:
            seen[parsed.event_id] = parsed
            batch.events.append((line, parsed))
        elif seen[parsed.event_id].same_content(parsed.envelope_hash, parsed.payload_text):
            batch.duplicates += 1
        else:
            batch.rejected.append((line, "event_id_conflict", parsed.event_id))
    return batch


def _prepared(chunks: Iterator[Chunk], run_id: str | None) -> Iterator[_Batch]:
    """Read, parse, classify and lay out each chunk: the Python half of every batch."""
    while True:
        with cyclic_gc_paused():
            chunk = next(chunks, None)
            if chunk is None:
                return
            now = datetime.now(UTC)
            batch = _classify(chunk, parse_chunk(chunk), now)
            if batch.events:
                batch.event_rows = _events_table(batch.events, run_id, now)
        yield batch


def _events_table(events: list[tuple[RawLine, Envelope]], run_id: str | None, now: datetime):
    return pa.table(
        {
            "batch_pos": pa.array(range(1, len(events) + 1), pa.int64()),
            "event_id": [e.event_id for _, e in events],
            "event_type": [e.event_type for _, e in events],
            "occurred_at": pa.array([e.occurred_at for _, e in events], _INSTANT),
            "ingested_at": pa.repeat(pa.scalar(now, _INSTANT), len(events)),
            "source": [e.source for _, e in events],
            "payload": [e.payload_text for _, e in events],
            "envelope_hash": [e.envelope_hash for _, e in events],
            "source_file": [line.source_file for line, _ in events],
            "line_number": pa.array([line.line_number for line, _ in events], pa.int32()),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), len(events)),
        }
    )


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
    result.duplicates += batch.duplicates
    if batch.event_rows is not None:
        with lakehouse.staged(conn, batch.event_rows, EVENTS) as stage:
            # Already stored under the same id: identical content is a duplicate, else a conflict.
            matches = conn.execute(
                select(stage.c.batch_pos, EVENTS.c.envelope_hash, EVENTS.c.payload).join(
                    EVENTS, EVENTS.c.event_id == stage.c.event_id
                )
            ).all()
            for position, stored_hash, stored_payload in matches:
                line, envelope = batch.events[position - 1]
                if envelope.same_content(stored_hash, stored_payload):
                    result.duplicates += 1
                else:
                    batch.rejected.append((line, "event_id_conflict", envelope.event_id))
            base = int(conn.execute(last_ingest_seq()).scalar_one())
            columns = [c.name for c in EVENTS.c if c.name != "ingest_seq"]
            seq = (stage.c.batch_pos + literal(base)).label("ingest_seq")
            new_rows = select(*(stage.c[c] for c in columns), seq).where(
                ~EVENTS.select().where(EVENTS.c.event_id == stage.c.event_id).exists()
            )
            conn.execute(EVENTS.insert().from_select([*columns, "ingest_seq"], new_rows))
            result.events_inserted += len(batch.events) - len(matches)
    if batch.rejected:
        for _, reason, _ in batch.rejected:
            result.count_rejection(reason)
        rows = _rejected_table(batch.rejected, run_id, batch.now)
        with lakehouse.staged(conn, rows, REJECTED) as stage:
            conn.execute(insert_missing(REJECTED, stage, ["source_file", "line_number"]))


def _save_progress(
    conn: Connection, file: LandingFile, lines_read: int, run_id: str | None, now: datetime
) -> None:
    s = literal_row(
        source_file=file.name,
        lines_read=lines_read,
        size_bytes=file.size_bytes,
        updated_at=now,
        run_id=run_id,
    )
    t = FILES.alias("t")
    columns = ["lines_read", "size_bytes", "updated_at", "run_id"]
    conn.execute(
        Merge(
            target=t,
            source=s,
            on=t.c.source_file == s.c.source_file,
            update_when=None,
            update_values={c: s.c[c] for c in columns},
            insert_values={c.name: s.c[c.name] for c in FILES.c},
        )
    )


def _chunks(
    files: list[LandingFile], progress: dict[str, tuple[int, int]], batch_lines: int
) -> Iterator[Chunk]:
    """New lines of each changed file, in file-name then line order, `batch_lines` at a time.

    A changed file with no new complete line still yields one empty chunk, so its size is saved.
    """
    for file in files:
        lines_done = progress.get(file.name, (0, -1))[0]
        lines = read_lines(file, skip=lines_done)
        first = True
        while (chunk := list(itertools.islice(lines, batch_lines))) or first:
            first = False
            yield Chunk(file, lines_done, chunk)
            lines_done = chunk[-1].line_number if chunk else lines_done


def ingest_landing(
    lakehouse: Lakehouse,
    landing_dir: Path,
    run_id: str | None = None,
    batch_lines: int = BATCH_LINES,
) -> BronzeResult:
    """Ingest every new line of every landing file, in file-name then line order."""
    result = BronzeResult()
    # One connection for the whole step (a transaction per batch): closing a DuckDB connection
    # checkpoints the file, which per batch cost more than the writes themselves.
    with lakehouse.connect() as conn:
        with conn.begin():
            progress = {
                name: (lines, size)
                for name, lines, size in conn.execute(
                    select(FILES.c.source_file, FILES.c.lines_read, FILES.c.size_bytes)
                )
            }
        files = list_landing_files(landing_dir)
        # A file whose size has not changed since the last run is not even opened.
        changed = [f for f in files if progress.get(f.name, (0, -1))[1] != f.size_bytes]
        result.files_seen, result.files_read = len(files), len(changed)

        def write(batch: _Batch) -> None:  # on the writer thread, the only user of `conn`
            with conn.begin():
                _write_batch(lakehouse, conn, batch, run_id, result)
                _save_progress(conn, batch.chunk.file, batch.chunk.lines_done, run_id, batch.now)

        write_behind(_prepared(_chunks(changed, progress, batch_lines), run_id), write)
    return result
