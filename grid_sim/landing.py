"""The landing files the generator writes: an even split of lines, some files gzipped.

Lines are buffered and written as they come, so memory does not grow with the number of events.
File k holds lines [(k-1)*n/files, k*n/files): even sizes, and name order is write order, which
is the order the pipeline ingests them in.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import IO

_FLUSH_EVERY = 2048


class LandingWriter:
    """Writes `n_events` non-blank lines over `n_files` files in `out_dir`; counts blank lines."""

    def __init__(
        self,
        out_dir: Path,
        n_events: int,
        n_files: int,
        gzip_every: int,
        rnd: Callable[[], float],
        blank_share: float,
    ) -> None:
        self.out_dir = out_dir
        self.n_events = n_events
        self.n_files = n_files
        self.gzip_every = gzip_every
        self.rnd = rnd
        self.blank_share = blank_share
        self.files: list[str] = []
        self.written = 0  # non-blank lines
        self.blank = 0
        self._raw: IO[bytes] | None = None
        self._handle: IO[bytes] | gzip.GzipFile | None = None
        self._buffer: list[str] = []
        self._boundary = 0

    def write_line(self, line: str) -> None:
        while self.written >= self._boundary and len(self.files) < self.n_files:
            self._open_next_file()
        if self.rnd() < self.blank_share:
            self._buffer.append("")
            self.blank += 1
        self._buffer.append(line)
        self.written += 1
        if len(self._buffer) >= _FLUSH_EVERY:
            self._flush()

    def finish(self) -> None:
        """Create the files left empty when there were fewer lines than files."""
        while len(self.files) < self.n_files:
            self._open_next_file()

    def close(self) -> None:
        self._flush()
        if self._handle is not None and self._handle is not self._raw:
            self._handle.close()
        if self._raw is not None:
            self._raw.close()
        self._handle = self._raw = None

    def _open_next_file(self) -> None:
        self.close()
        index = len(self.files) + 1
        gz = self.gzip_every > 0 and index % self.gzip_every == 0
        name = f"events-{index:0{max(4, len(str(self.n_files)))}d}.ndjson" + (".gz" if gz else "")
        self.files.append(name)
        self._raw = open(self.out_dir / name, "wb")  # noqa: SIM115 (closed by close)
        # mtime=0 and no embedded file name keep gzip output byte-identical across runs.
        self._handle = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
            if gz
            else self._raw
        )
        self._boundary = index * self.n_events // self.n_files

    def _flush(self) -> None:
        if self._buffer and self._handle is not None:
            self._handle.write(("\n".join(self._buffer) + "\n").encode("utf-8"))
            self._buffer.clear()
