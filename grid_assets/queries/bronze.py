"""Statements over Bronze: arrival positions, the anti-join append of a staged batch, and the
landing files' progress and rejections."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Insert, Select, Update, func, literal, select, update
from sqlalchemy.sql import FromClause

from grid_assets.ingest.landing import REMOVED, Progress
from grid_assets.models.bronze import Event, IngestedFile, RejectedEvent, RejectedFile
from grid_assets.queries.common import insert_missing, literal_row
from grid_assets.queries.dialect import Merge

EVENTS = Event.__table__
REJECTED = RejectedEvent.__table__
FILES = IngestedFile.__table__
REJECTED_FILES = RejectedFile.__table__
PROGRESS_COLUMNS = [FILES.c[name] for name in Progress._fields]


def grid_events() -> ColumnElement[bool]:
    """GRID's own events, not the pipeline's `pipeline.*` announcements."""
    return ~EVENTS.c.event_type.startswith("pipeline.")


def last_ingest_seq() -> Select:
    """The arrival position of the latest Bronze event (0 when Bronze is empty)."""
    return select(func.coalesce(func.max(EVENTS.c.ingest_seq), 0))


def last_grid_ingest_seq() -> Select:
    """The arrival position of the latest GRID event (0 when there is none)."""
    return last_ingest_seq().where(grid_events())


def stored_versions(stage: FromClause) -> Select:
    """For each staged event whose id Bronze already holds: its position in the batch and the
    stored version's envelope hash and payload.

    The ids are matched first, reading only `event_id` and `ingest_seq` of every stored event;
    hash and payload are then read for the matches alone (usually none). One join reading
    them for every stored row cost 0.47 s a batch at 2.9M stored events, most of Bronze's
    slowing down as it grows."""
    found = (
        select(stage.c.batch_pos, EVENTS.c.ingest_seq)
        .join(EVENTS, EVENTS.c.event_id == stage.c.event_id)
        .subquery("found")
    )
    stored = EVENTS.alias("stored")
    return select(found.c.batch_pos, stored.c.envelope_hash, stored.c.payload).join(
        stored, stored.c.ingest_seq == found.c.ingest_seq
    )


def insert_new_events(
    stage: FromClause, base_seq: int, all_new: bool = False, stored: FromClause | None = None
) -> Insert:
    """The staged events whose id Bronze does not hold, numbered `base_seq + 1, ...` in batch
    order among themselves, so arrival positions have no gaps wherever batches end.

    `all_new`: none of them was stored when the batch looked, so each one's number is its
    batch position and no ranking is needed.

    Which ids Bronze holds is decided by an anti-join on `event_id` (a second scan of every
    stored id), so that the statement run again adds nothing; or, given `stored` (the
    `batch_pos` of the events `stored_versions` found, in the same transaction: one snapshot,
    no other writer between), by those positions alone."""
    columns = [c.name for c in EVENTS.c if c.name != "ingest_seq"]
    rank = stage.c.batch_pos if all_new else func.row_number().over(order_by=stage.c.batch_pos)
    new_rows = select(
        *(stage.c[c] for c in columns), (rank + literal(base_seq)).label("ingest_seq")
    )
    if stored is None:
        held = EVENTS.select().where(EVENTS.c.event_id == stage.c.event_id).exists()
        new_rows = new_rows.where(~held)
    elif not all_new:
        new_rows = new_rows.where(stage.c.batch_pos.not_in(select(stored.c.batch_pos)))
    return EVENTS.insert().from_select([*columns, "ingest_seq"], new_rows)


def insert_rejected_lines(stage: FromClause) -> Insert:
    """Staged rejected lines not recorded yet, keyed by file and line."""
    return insert_missing(REJECTED, stage, ["source_file", "line_number"])


def insert_rejected_file(**row: Any) -> Insert:
    """One unreadable landing file, once per file, reason and size."""
    return insert_missing(
        REJECTED_FILES, literal_row(**row), ["source_file", "reason", "size_bytes"]
    )


def save_progress(name: str, progress: Progress, run_id: str | None, now: datetime) -> Merge:
    """How far `name` has been read: its row in `bronze.ingested_files`, inserted or replaced."""
    s = literal_row(source_file=name, **progress._asdict(), updated_at=now, run_id=run_id)
    t = FILES.alias("t")
    columns = [c.name for c in FILES.c if c.name != "source_file"]
    return Merge(
        target=t,
        source=s,
        on=t.c.source_file == s.c.source_file,
        update_when=None,
        update_values={c: s.c[c] for c in columns},
        insert_values={c.name: s.c[c.name] for c in FILES.c},
    )


def read_progress() -> Select:
    return select(FILES.c.source_file, *PROGRESS_COLUMNS)


def mark_removed(names: Sequence[str], run_id: str | None) -> Update:
    """Landing files that were held (unreadable, rewritten) and are gone from the folder."""
    return update(FILES).where(FILES.c.source_file.in_(names)).values(state=REMOVED, run_id=run_id)
