"""Bronze: what arrived, exactly as it arrived. Append-only; the pipeline never updates a row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from grid_assets.models.base import Base, Instant, JsonText, Key


class Event(Base):
    """Every accepted GRID event and every event the pipeline emits about its own writes.

    `payload` is the payload's JSON text cut verbatim from the source line. `ingest_seq` orders
    events by arrival (earlier runs, then file name, then line) and is what Silver's cursor follows.
    One row per distinct event_id.
    """

    __tablename__ = "events"
    __table_args__ = {"schema": "bronze"}

    event_id: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="Id of the event as GRID sent it; the table's key."
    )
    ingest_seq: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment=(
            "Arrival position: earlier runs, then file name, then line. Silver's cursor follows it."
        ),
    )
    event_type: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment=(
            "Event type as sent (order.placed, product.updated, system.heartbeat, ...); "
            "pipeline.table_written for the pipeline's own events."
        ),
    )
    occurred_at: Mapped[datetime] = mapped_column(
        Instant,
        nullable=False,
        comment=(
            "When the event happened, in UTC (the envelope's occurred_at with its offset applied)."
        ),
    )
    ingested_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When Bronze stored the event, in UTC."
    )
    source: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment=(
            "Emitting system (grid-web, grid-catalog, ...); unknown when absent, grid-pipeline for "
            "the pipeline's own events."
        ),
    )
    payload: Mapped[str] = mapped_column(
        JsonText,
        nullable=False,
        # On DuckDB, zstd instead of the FSST it would pick: less work when Bronze commits and
        # checkpoints, and a smaller file (see lakehouse.duckdb).
        info={"pii": True, "duckdb_compression": "zstd"},
        comment=(
            "The payload's JSON text cut verbatim from the line; holds customer ids and shipment "
            "tracking numbers."
        ),
    )
    # Hash of the canonical JSON of every envelope member but the payload: with the payload text,
    # it tells a re-sent duplicate from a different event reusing the id.
    envelope_hash: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment=(
            "Hash of the canonical JSON of the envelope without its payload; with the payload it "
            "tells a re-sent duplicate from a conflict."
        ),
    )
    source_file: Mapped[str | None] = mapped_column(
        Key, comment="Landing file the event was read from; null for the pipeline's own events."
    )
    line_number: Mapped[int | None] = mapped_column(
        Integer,
        comment=(
            "Physical line of source_file, from 1, blank lines counted; null for the pipeline's "
            "own events."
        ),
    )
    run_id: Mapped[str | None] = mapped_column(Key, comment="Dagster run that stored the event.")


class RejectedEvent(Base):
    """A line that could not be accepted as an event, kept verbatim with the reason.

    Includes `event_id_conflict`: a second, different event under an event_id already stored.
    One row per rejected line.
    """

    __tablename__ = "rejected_events"
    __table_args__ = {"schema": "bronze"}

    source_file: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="Landing file the line was read from."
    )
    line_number: Mapped[int] = mapped_column(
        Integer,
        primary_key=True,
        comment="Physical line of source_file, from 1, blank lines counted.",
    )
    raw_line: Mapped[str] = mapped_column(
        JsonText,
        nullable=False,
        info={"pii": True},
        comment="The rejected line verbatim; can hold customer ids and shipment tracking numbers.",
    )
    reason: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment=(
            "Why it was rejected (invalid_json: ..., missing_event_id, event_id_conflict, ...); "
            "several are joined by a semicolon."
        ),
    )
    event_id: Mapped[str | None] = mapped_column(
        Key,
        comment=(
            "The event_id already stored with different content, for event_id_conflict; null "
            "otherwise."
        ),
    )
    rejected_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When Bronze rejected the line, in UTC."
    )
    run_id: Mapped[str | None] = mapped_column(Key, comment="Dagster run that rejected the line.")


class IngestedFile(Base):
    """How far each landing file has been read, written in the same unit of work as the rows it
    accounts for, so the next run reads only new complete lines.

    `offset_bytes` is the byte position after the last consumed line (in the decompressed
    stream for `.gz`) and `lines_read` that line's number. `state` is `reading` (stopped between
    batches: reopened by the next run), `complete`, `partial_line` (a final line without its
    newline is waiting: `tail_bytes` long), `unreadable` (stopped by a read error) or
    `rewritten` (shrank, or changed before the offset: held). `size_bytes` is the size the file
    had when it was last examined and `fingerprint` a hash of the first and last blocks read.
    One row per landing file.
    """

    __tablename__ = "ingested_files"
    __table_args__ = {"schema": "bronze"}

    source_file: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="Landing file name; the table's key."
    )
    lines_read: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Number of the last line consumed, blank lines counted."
    )
    offset_bytes: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment=(
            "Byte position after the last consumed line (in the decompressed stream for .gz): "
            "where the next read starts."
        ),
    )
    size_bytes: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Size of the file when it was last examined."
    )
    tail_bytes: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment=(
            "Length of a final line still waiting for its newline (state partial_line); 0 "
            "otherwise."
        ),
    )
    state: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment="reading, complete, partial_line, unreadable, rewritten or removed.",
    )
    fingerprint: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment=(
            "Hash of the first and last 16 KiB read, to tell a file that grew from one rewritten."
        ),
    )
    updated_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When this progress was recorded, in UTC."
    )
    run_id: Mapped[str | None] = mapped_column(
        Key, comment="Dagster run that recorded this progress."
    )


class RejectedFile(Base):
    """A landing file (or an entry named like one) that could not be read to its end: a
    truncated or corrupt gzip, a read error, a directory, FIFO or broken link, a file that shrank
    or was rewritten. The lines before the defect are in Bronze; the rest waits for the file to
    change. One row per file, reason and size at which it was seen.
    """

    __tablename__ = "rejected_files"
    __table_args__ = {"schema": "bronze"}

    source_file: Mapped[str] = mapped_column(
        Key,
        primary_key=True,
        comment="Landing file, or an entry named like one, that could not be read to its end.",
    )
    reason: Mapped[str] = mapped_column(
        Key,
        primary_key=True,
        comment=(
            "truncated_gzip, invalid_gzip, corrupt_gzip, read_error: ..., is_a_directory, "
            "not_a_regular_file, broken_link, file_shrank or file_rewritten."
        ),
    )
    size_bytes: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, comment="Size of the file when it was seen."
    )
    bytes_read: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Bytes read before the defect."
    )
    lines_read: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment="Complete lines read before the defect (those are in bronze.events).",
    )
    rejected_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When the file was recorded here, in UTC."
    )
    run_id: Mapped[str | None] = mapped_column(Key, comment="Dagster run that recorded the file.")
