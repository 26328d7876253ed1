"""How a batch of rows reaches SQL as a relation, one small class per engine.

- DuckDB scans the batch's Arrow buffers in place (`lakehouse.duckdb.ArrowScan`): no rows
  through SQL text.
- Databricks receives files, not rows (`VolumeStaging`): each batch is written once as a Parquet
  file typed like the target table (exact decimals, UTC instants), uploaded once to a Unity
  Catalog volume through the Files API of `databricks-sdk`, and read by the load statement as
  `parquet.`<volume path>``. The file is removed once its load has run.

Why the Files API and not the connector's `PUT ... INTO`: the connector reads the whole local
file into memory before sending it and does not retry, and needs `staging_allowed_local_path` on
every connection; the Files API streams the request body from the open file (the batch is held
once, as Arrow, never again as bytes), retries transient failures, and lists and deletes, which
the sweep of leftovers needs.

File names derive from the run, the layer being written, the table and the batch's number within
the step: `<volume>/grid/<run id>/<layer>-<table>-<batch>.parquet`. A retried step writes the same
names again (with overwrite) and loads each batch from the file it has just written; the loads
themselves are idempotent (anti-join appends, forward-only MERGEs). What a crashed run leaves
behind is swept, with a log line, when the next run first prepares the lakehouse.
"""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.sql import FromClause

from grid_assets.lakehouse.core import free_space

log = logging.getLogger(__name__)
STAGING_FOLDER = "grid"
_SAFE_NAME = str.maketrans({c: "_" for c in "/\\:. "})


class Stager(Protocol):
    """Makes a batch of rows available to SQL as a relation for the duration of a block."""

    def stage(
        self, conn: Connection, rows: pa.Table, like: Table, columns: list[Column]
    ) -> Any: ...  # a context manager yielding a FromClause


class VolumeFiles(Protocol):
    """The part of `databricks.sdk`'s `FilesAPI` the staging uses."""

    def upload(self, file_path: str, contents: BinaryIO, *, overwrite: bool | None = None): ...

    def delete(self, file_path: str) -> None: ...

    def list_directory_contents(self, directory_path: str) -> Iterable[Any]: ...

    def delete_directory(self, directory_path: str) -> None: ...


def relation_name(like: Table) -> str:
    return f"stage_{like.name}"


def arrow_type(column: Column) -> pa.DataType | None:
    """The Arrow type a staged column is written as: the one its table declares."""
    sql_type = column.type
    if isinstance(sql_type, BigInteger):
        return pa.int64()
    if isinstance(sql_type, SmallInteger):
        return pa.int16()
    if isinstance(sql_type, Integer):
        return pa.int32()
    if isinstance(sql_type, Numeric) and sql_type.precision is not None:
        return pa.decimal128(sql_type.precision, sql_type.scale or 0)
    if isinstance(sql_type, Boolean):
        return pa.bool_()
    if isinstance(sql_type, DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(sql_type, Date):
        return pa.date32()
    if isinstance(sql_type, String):
        return pa.string()
    return None


def typed_like(rows: pa.Table, columns: list[Column]) -> pa.Table:
    """`rows` cast to the declared types of `columns`; a cast that would lose a value (a decimal
    with more places than its column, an integer out of range) raises instead."""
    fields = []
    for column in columns:
        current = rows.schema.field(column.name)
        wanted = arrow_type(column)
        fields.append(current.with_type(wanted) if wanted is not None else current)
    return rows.select([c.name for c in columns]).cast(pa.schema(fields), safe=True)


class StagingDiskFullError(RuntimeError):
    """The local folder a batch is written to before its upload has no room for it."""

    def __init__(self, path: Path, like: Table, rows: int) -> None:
        self.path = path
        free = free_space(path.parent)
        super().__init__(
            f"No space left to stage a batch of {rows:,} rows for {like.schema}.{like.name}: "
            f"its Parquet file could not be written in {path.parent} ({free}), where each batch "
            "waits for its upload to the staging volume. Free space there, or set TMPDIR to a "
            "folder on a larger disk, then run again: the batch was not loaded, and loads are "
            "idempotent, so the re-run loads it once."
        )


def write_parquet(rows: pa.Table, path: Path, like: Table) -> int:
    """Write `rows` (a batch for `like`) as one Parquet file; returns its size in bytes."""
    try:
        pq.write_table(rows, path, compression="zstd")
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise StagingDiskFullError(path, like, rows.num_rows) from exc
    return path.stat().st_size


@dataclass
class StagingStats:
    files: int = 0
    bytes: int = 0


@dataclass
class VolumeStaging:
    """Databricks: each batch becomes one Parquet file in a Unity Catalog volume."""

    volume: str  # /Volumes/<catalog>/<schema>/<volume>, checked by settings
    files: VolumeFiles
    run_id: str = "no-run"
    stats: StagingStats = field(default_factory=StagingStats)
    _batches: dict[str, int] = field(default_factory=dict)
    _local: Path | None = None

    @property
    def run_folder(self) -> str:
        return f"{self.volume}/{STAGING_FOLDER}/{self.run_id.translate(_SAFE_NAME)}"

    def file_path(self, like: Table, batch: int) -> str:
        layer = (like.schema or "default").translate(_SAFE_NAME)
        return f"{self.run_folder}/{layer}-{like.name}-{batch:06d}.parquet"

    def _local_dir(self) -> Path:
        # The pipeline's own temporary folder: nothing else is ever read or uploaded from it.
        if self._local is None or not self._local.is_dir():
            self._local = Path(tempfile.mkdtemp(prefix="grid-staging-"))
            # Removed with the stager (or at exit): one folder per process, not one per run left.
            weakref.finalize(self, shutil.rmtree, self._local, True)
        return self._local

    @contextmanager
    def stage(
        self, conn: Connection, rows: pa.Table, like: Table, columns: list[Column]
    ) -> Iterator[FromClause]:
        key = f"{like.schema}.{like.name}"
        batch = self._batches[key] = self._batches.get(key, 0) + 1
        remote = self.file_path(like, batch)
        local = self._local_dir() / Path(remote).name
        try:
            size = write_parquet(typed_like(rows, columns), local, like)
            with local.open("rb") as stream:
                self.files.upload(remote, stream, overwrite=True)
        finally:
            local.unlink(missing_ok=True)
        self.stats.files += 1
        self.stats.bytes += size
        relation = Table(remote, MetaData(), *columns, schema="parquet")
        yield relation.alias(relation_name(like))
        # Reached only when every statement reading the file has run (each commits on its own
        # on Databricks). After a failure the file stays for the sweep.
        self.files.delete(remote)

    def sweep(self) -> int:
        """Remove what earlier runs left in the staging folder (files of a crashed load);
        returns how many files went. The current run's own folder is kept."""
        root = f"{self.volume}/{STAGING_FOLDER}"
        removed = 0
        runs = []
        for entry in _listing(self.files, root):
            if entry.path.rstrip("/") == self.run_folder:
                continue
            if getattr(entry, "is_directory", False):
                runs.append(entry.path.rstrip("/"))
                for inner in _listing(self.files, entry.path.rstrip("/")):
                    self.files.delete(inner.path)
                    removed += 1
                self.files.delete_directory(entry.path.rstrip("/"))
            else:
                self.files.delete(entry.path)
                removed += 1
        if removed or runs:
            log.warning(
                "Swept %d staged file(s) left by %d earlier run(s) in %s (loads that did not "
                "finish; each batch is loaded again from its source by the run that retries it)",
                removed,
                len(runs),
                root,
            )
        return removed


def _listing(files: VolumeFiles, folder: str) -> list[Any]:
    """The entries of `folder`, or none when it does not exist yet."""
    try:
        return list(files.list_directory_contents(folder))
    except Exception as exc:  # the SDK's NotFound; anything else is raised
        if type(exc).__name__ in ("NotFound", "ResourceDoesNotExist"):
            return []
        raise


def sdk_files(base_url: str, token: str, timeout_s: int) -> VolumeFiles:
    """The Files API of `databricks-sdk` at `base_url` (`https://<workspace host>`),
    authenticated by the token alone: sent in the Authorization header, never logged (the SDK
    logs no headers unless DATABRICKS_DEBUG_HEADERS is set; this package masks it anyway)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    config = Config(
        host=base_url,
        token=token,
        auth_type="pat",
        retry_timeout_seconds=timeout_s,
        http_timeout_seconds=timeout_s,
    )
    return WorkspaceClient(config=config).files
