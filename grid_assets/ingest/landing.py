"""The landing folder: which raw files exist, and their new complete lines from a byte offset on.

What a reader guarantees (and `bronze.ingested_files` records):

- Only complete lines are consumed. A final line without its newline may still be being
  written; it is left for a later run, unless the file has ended for sure: a gzip stream that
  ended properly, or a plain file found at exactly the size it had when a previous run saw that
  same unfinished line and not modified for `TAIL_QUIET_S` seconds (its writer has stopped; see
  `FileRead.complete_through`).
- Reading resumes at the byte offset after the last consumed line (in the decompressed stream
  for `.gz`), never by counting lines again.
- What was read is fingerprinted (the first and the last `FINGERPRINT_BLOCK` bytes before the
  offset); a file that shrank or whose read part changed is not read further and says why.
- A file that cannot be read to its end (a truncated or corrupt gzip, an I/O error) yields its
  complete lines and then stops with a reason instead of raising.

Lines come in blocks (`LineBlock`: the bytes as read and each line's offsets), so that a
million lines are a few dozen Python objects, not a million; `raw_line` makes one line's
`RawLine` when a line needs one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

LANDING_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
FINGERPRINT_BLOCK = 16 * 1024
# How long a plain file must have been left alone before its unterminated last line, already
# seen unfinished by an earlier run, counts as complete: runs can follow each other within
# milliseconds, and a writer may pause mid-line for a moment.
TAIL_QUIET_S = 10.0
UTF8_BOM = b"\xef\xbb\xbf"
NEWLINE = ord("\n")
# How much of a plain file one read takes (a gzip stream hands out what one block decompresses to).
READ_BYTES = 8 * 1024 * 1024

# ingested_files.state
READING = "reading"  # stopped at a batch boundary (or a crash): more may follow
COMPLETE = "complete"  # read to its end; nothing pending
PARTIAL_LINE = "partial_line"  # read to its end but for a final line without its newline
UNREADABLE = "unreadable"  # could not be read to its end (see bronze.rejected_files)
REWRITTEN = "rewritten"  # shrank or changed before the offset: held, not read further
REMOVED = "removed"  # was unreadable or rewritten, and has left the landing folder since
HELD_STATES = (UNREADABLE, REWRITTEN)


@dataclass(frozen=True, slots=True)
class LandingFile:
    name: str  # relative to the landing folder; the stable identity used in Bronze
    path: Path
    size_bytes: int
    modified_at: float = 0.0  # st_mtime, seconds since the epoch

    @property
    def compressed(self) -> bool:
        return self.name.endswith(".gz")


@dataclass(frozen=True, slots=True)
class UnreadableEntry:
    """A name in the landing folder that looks like an event file but is not a readable one."""

    name: str
    reason: str  # is_a_directory | broken_link | not_a_regular_file | stat_failed: ...
    size_bytes: int


class RawLine(NamedTuple):  # a tuple: cheap to make, one per landing line
    source_file: str
    line_number: int  # 1-based physical line, blank lines included
    text: str | None  # None when the bytes are not UTF-8
    raw: str  # what is kept in Bronze for a rejected line


class Progress(NamedTuple):
    """How far a file has been read: what `bronze.ingested_files` holds for it."""

    lines_read: int
    offset_bytes: int
    size_bytes: int  # bytes of the file examined (on-disk size for .gz)
    tail_bytes: int  # length of a final line still without its newline
    state: str
    fingerprint: str


NOTHING_READ = Progress(0, 0, 0, 0, READING, "")


def needs_reading(size_bytes: int, done: Progress | None) -> bool:
    """Whether a landing entry may hold what Bronze has not stored yet, from its size now and
    its row in `bronze.ingested_files` (`done`): it has no row; its size differs from the size
    last examined; or its reading was left open (stopped between batches, a final line waiting
    for its newline, or back in the folder after being held). A file held as unreadable or
    rewritten is looked at again only when its size changes. Bronze opens only these files, and
    the landing sensor requests a run only for them: one rule for both."""
    if done is None or done.state in (READING, PARTIAL_LINE, REMOVED):
        return True
    return size_bytes != done.size_bytes


def list_landing_files(landing_dir: Path) -> list[LandingFile]:
    """Regular event files directly in the folder, in name order (which is ingestion order)."""
    return scan_landing(landing_dir)[0]


def scan_landing(landing_dir: Path) -> tuple[list[LandingFile], list[UnreadableEntry]]:
    """Event files in name order, and the entries named like one that cannot be read as a file
    (a directory, a FIFO, a broken link): those are reported, never opened (a FIFO would block)."""
    if not landing_dir.is_dir():
        return [], []
    files: list[LandingFile] = []
    unreadable: list[UnreadableEntry] = []
    for path in landing_dir.iterdir():
        if not path.name.endswith(LANDING_SUFFIXES):
            continue
        try:
            info = path.stat()
        except FileNotFoundError:
            unreadable.append(UnreadableEntry(path.name, "broken_link", 0))
            continue
        except OSError as exc:
            unreadable.append(UnreadableEntry(path.name, f"stat_failed: {exc.strerror}", 0))
            continue
        if stat.S_ISREG(info.st_mode):
            files.append(LandingFile(path.name, path, info.st_size, info.st_mtime))
        elif stat.S_ISDIR(info.st_mode):
            unreadable.append(UnreadableEntry(path.name, "is_a_directory", 0))
        else:
            unreadable.append(UnreadableEntry(path.name, "not_a_regular_file", 0))
    return sorted(files, key=lambda f: f.name), sorted(unreadable, key=lambda e: e.name)


def fingerprint(head: bytes, tail: bytes) -> str:
    """Of what was read: its first and last blocks (they overlap on a short file)."""
    digest = hashlib.sha256()
    digest.update(len(head).to_bytes(8, "big") + head + len(tail).to_bytes(8, "big") + tail)
    return digest.hexdigest()[:32]


def _read_error(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "truncated_gzip"
    if isinstance(exc, gzip.BadGzipFile):
        return "invalid_gzip"
    if isinstance(exc, zlib.error):
        return "corrupt_gzip"
    if isinstance(exc, OSError):
        return f"read_error: {exc.strerror or type(exc).__name__}"
    return f"read_error: {type(exc).__name__}"


class FileRead:
    """One pass over a landing file from its recorded progress: `blocks()` yields the new
    complete lines a block at a time (`lines()` one by one); `progress()` is what may be
    recorded after the blocks yielded so far."""

    def __init__(self, file: LandingFile, done: Progress = NOTHING_READ) -> None:
        self.file = file
        self.done = done
        self.lines_read = done.lines_read
        self.offset = done.offset_bytes
        # A final unterminated line ending exactly here is complete: the file had this same
        # size when a previous run saw the same unfinished line, and has been left alone since.
        settled = time.time() - file.modified_at >= TAIL_QUIET_S
        self.complete_through = (
            done.size_bytes
            if done.state == PARTIAL_LINE and file.size_bytes == done.size_bytes and settled
            else None
        )
        self.head = b""
        self.window = b""  # the last FINGERPRINT_BLOCK bytes before `offset`
        self.size_seen = done.size_bytes
        self.tail_bytes = 0
        self.finished = False
        self.error: str | None = None  # why the file was not read to its end

    def progress(self) -> Progress:
        if self.error == "file_rewritten" or self.error == "file_shrank":
            d = self.done  # what Bronze holds is unchanged; only the state says why it stops
            return Progress(
                d.lines_read, d.offset_bytes, self.file.size_bytes, 0, REWRITTEN, d.fingerprint
            )
        if self.error is not None:
            state = UNREADABLE
        elif not self.finished:
            state = READING
        else:
            state = PARTIAL_LINE if self.tail_bytes else COMPLETE
        return Progress(
            self.lines_read,
            self.offset,
            self.size_seen,
            self.tail_bytes if self.error is None else 0,
            state,
            fingerprint(self.head, self.window),
        )

    def _open(self) -> tuple[BinaryIO, BinaryIO]:
        raw = self.file.path.open("rb")
        if not self.file.compressed:
            return raw, raw
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]

    def _verify(self, handle: BinaryIO) -> bool:
        """Re-read the fingerprinted blocks of what was read before, leaving the handle at the
        recorded offset; False (with the reason in `error`) when they are not there any more."""
        offset = self.offset
        if offset == 0:
            return True
        if not self.file.compressed and self.file.size_bytes < offset:
            self.error = "file_shrank"
            return False
        head = handle.read(min(FINGERPRINT_BLOCK, offset))
        tail_start = max(offset - FINGERPRINT_BLOCK, 0)
        if tail_start >= len(head):
            handle.seek(tail_start)  # forward: a gzip stream is decompressed up to it
            tail = handle.read(offset - tail_start)
        else:
            tail = (head + handle.read(offset - len(head)))[tail_start:]
        if len(head) < min(FINGERPRINT_BLOCK, offset) or len(tail) != offset - tail_start:
            self.error = "file_shrank"
            return False
        if fingerprint(head, tail) != self.done.fingerprint:
            self.error = "file_rewritten"
            return False
        self.head = head
        self.window = tail
        return True

    def lines(self) -> Iterator[RawLine]:
        """The new complete lines, one by one (`blocks` without the per-block progress)."""
        for block in self.blocks():
            yield from block.raw_lines()

    def blocks(self, max_lines: int = 100_000) -> Iterator[LineBlock]:
        """The new complete lines, `max_lines` to a block but for the last, which takes the
        rest when that is at most half a block more: a file of 125,000 lines is one block of
        125,000, not 100,000 then 25,000 (each block is a unit of work with fixed costs). Each
        block is accounted for (offset, count, fingerprinted bytes) before it is yielded, so
        `progress()` taken right after a block covers exactly the blocks handed out."""
        last_most = max_lines + max_lines // 2  # the most lines a (last) block holds
        try:
            handle, raw = self._open()
        except OSError as exc:
            self.error = _read_error(exc)
            return
        with raw, handle:
            pending = bytearray()  # read, not handed out: complete lines, then a partial one
            counted = 0  # newlines in `pending`
            failure: BaseException | None = None
            at_end = False
            try:
                if not self._verify(handle):
                    return
                # A gzip stream hands out a piece per compressed block (read1, so that what was
                # decompressed before a truncation is kept); a plain file is read in large
                # pieces, and a short read is the end of what is written now: read no further,
                # or a writer appending meanwhile would be read from the middle of its line.
                read = handle.read1 if self.file.compressed else handle.read  # type: ignore[attr-defined]
                while not at_end:
                    piece = read(READ_BYTES)
                    at_end = not piece if self.file.compressed else len(piece) < READ_BYTES
                    pending += piece
                    counted += piece.count(b"\n")
                    while counted > last_most:
                        yield self._account(pending, max_lines)
                        counted -= max_lines
            except (OSError, EOFError, zlib.error) as exc:
                failure = exc
            while counted:  # the complete lines read before the end (or the failure)
                taken = counted if counted <= last_most else max_lines
                yield self._account(pending, taken)
                counted -= taken
            if failure is not None:
                self.error = _read_error(failure)
                self.size_seen = self.file.size_bytes
                return
            # A final line without its newline is complete at the end of a gzip stream that
            # ended properly (nothing follows; a stream still being written raises EOFError),
            # or at a plain file's end already seen unfinished and left alone.
            if pending and (
                self.file.compressed or self.offset + len(pending) == self.complete_through
            ):
                yield self._account(pending, 1)
            self.tail_bytes = len(pending)
            self.finished = True
            if self.file.compressed:
                self.size_seen = os.fstat(raw.fileno()).st_size
            else:
                self.size_seen = self.offset + self.tail_bytes

    def _account(self, pending: bytearray, count: int) -> LineBlock:
        """Take the first `count` lines off `pending` (the last may lack its newline when it is
        all that is left) and account for them: first block, offset, count, fingerprint window."""
        view = np.frombuffer(pending, np.uint8)
        ends = np.flatnonzero(view == NEWLINE)[:count] + 1
        if len(ends) < count:  # the final line without its newline
            ends = np.append(ends, len(pending))
        del view
        with memoryview(pending) as whole:  # one copy (a bytearray slice is one more)
            data = bytes(whole[: ends[-1]])
        del pending[: len(data)]
        starts = np.empty_like(ends)
        starts[0], starts[1:] = 0, ends[:-1]
        if self.offset == 0 and data.startswith(UTF8_BOM):
            starts[0] = len(UTF8_BOM)  # not part of the first line
        if self.offset < FINGERPRINT_BLOCK:
            self.head += data[: FINGERPRINT_BLOCK - len(self.head)]
        self.window = (self.window + data[-FINGERPRINT_BLOCK:])[-FINGERPRINT_BLOCK:]
        block = LineBlock(self.file.name, self.lines_read + 1, data, starts, ends)
        self.offset += len(data)
        self.lines_read += count
        return block


def raw_line(source_file: str, line_number: int, line: bytes) -> RawLine:
    """One line as Bronze keeps it: without its line break (any run of CR and LF), decoded."""
    body = line.rstrip(b"\r\n")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return RawLine(source_file, line_number, None, body.decode("utf-8", "backslashreplace"))
    return RawLine(source_file, line_number, text, text)


@dataclass(frozen=True, slots=True)
class LineBlock:
    """Complete lines of one landing file, back to back as read: line `first_number + i` is
    `data[starts[i]:ends[i]]`, its newline included (the file's last line may have none; a
    byte-order mark starting the file is outside line 1)."""

    source_file: str
    first_number: int
    data: bytes
    starts: np.ndarray
    ends: np.ndarray

    @classmethod
    def empty(cls, source_file: str, first_number: int) -> LineBlock:
        nothing = np.zeros(0, np.int64)
        return cls(source_file, first_number, b"", nothing, nothing)

    @classmethod
    def from_lines(cls, source_file: str, lines: list[bytes], first_number: int = 1) -> LineBlock:
        """A block of these lines (each given without its newline)."""
        lengths = np.array([len(line) + 1 for line in lines], np.int64)
        ends = np.cumsum(lengths)
        data = b"".join(line + b"\n" for line in lines)
        return cls(source_file, first_number, data, ends - lengths, ends)

    def __len__(self) -> int:
        return len(self.ends)

    def raw_line(self, i: int) -> RawLine:
        """Line `first_number + i`."""
        return raw_line(
            self.source_file,
            self.first_number + i,
            self.data[int(self.starts[i]) : int(self.ends[i])],
        )

    def raw_lines(self) -> Iterator[RawLine]:
        return (self.raw_line(i) for i in range(len(self)))
