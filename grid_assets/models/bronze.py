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

    event_id: Mapped[str] = mapped_column(Key, primary_key=True)
    ingest_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_type: Mapped[str] = mapped_column(Key, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    ingested_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    source: Mapped[str] = mapped_column(Key, nullable=False)
    payload: Mapped[str] = mapped_column(JsonText, nullable=False)
    # Hash of the canonical JSON of every envelope member but the payload: with the payload text,
    # it tells a re-sent duplicate from a different event reusing the id.
    envelope_hash: Mapped[str] = mapped_column(Key, nullable=False)
    source_file: Mapped[str | None] = mapped_column(Key)
    line_number: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(Key)


class RejectedEvent(Base):
    """A line that could not be accepted as an event, kept verbatim with the reason.

    Includes `event_id_conflict`: a second, different event under an event_id already stored.
    One row per rejected line.
    """

    __tablename__ = "rejected_events"
    __table_args__ = {"schema": "bronze"}

    source_file: Mapped[str] = mapped_column(Key, primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    raw_line: Mapped[str] = mapped_column(JsonText, nullable=False)
    reason: Mapped[str] = mapped_column(Key, nullable=False)
    event_id: Mapped[str | None] = mapped_column(Key)
    rejected_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    run_id: Mapped[str | None] = mapped_column(Key)


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

    source_file: Mapped[str] = mapped_column(Key, primary_key=True)
    lines_read: Mapped[int] = mapped_column(BigInteger, nullable=False)
    offset_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tail_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    state: Mapped[str] = mapped_column(Key, nullable=False)
    fingerprint: Mapped[str] = mapped_column(Key, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    run_id: Mapped[str | None] = mapped_column(Key)


class RejectedFile(Base):
    """A landing file (or an entry named like one) that could not be read to its end: a
    truncated or corrupt gzip, a read error, a directory, FIFO or broken link, a file that shrank
    or was rewritten. The lines before the defect are in Bronze; the rest waits for the file to
    change. One row per file, reason and size at which it was seen.
    """

    __tablename__ = "rejected_files"
    __table_args__ = {"schema": "bronze"}

    source_file: Mapped[str] = mapped_column(Key, primary_key=True)
    reason: Mapped[str] = mapped_column(Key, primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bytes_read: Mapped[int] = mapped_column(BigInteger, nullable=False)
    lines_read: Mapped[int] = mapped_column(BigInteger, nullable=False)
    rejected_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    run_id: Mapped[str | None] = mapped_column(Key)
