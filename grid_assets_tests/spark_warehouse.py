"""A Databricks SQL warehouse stood in for by a local SparkSession, and a volume on local disk.

`SparkWarehouse.module()` is a PEP 249 module for `databricks_engine(..., dbapi=...)`:
the production `Lakehouse`, `staging.VolumeStaging` and the Databricks dialect run unchanged,
and every statement they send is executed by Spark SQL with its named parameters passed as
`spark.sql(sql, args=...)`, the way the connector sends them (native `:name` markers), except:

- The only text changed is the path inside `parquet.`/Volumes/...``, pointed at the folder
  `LocalVolume` keeps that volume in. Everything else reaches Spark as the dialect compiled it.
- `CREATE TABLE ... USING DELTA` runs as `spark_support.delta_ddl_to_parquet` adapts it: Delta
  cannot be loaded offline.
- `MERGE INTO` and `DELETE FROM` need Delta (Spark rejects both on parquet tables): they are
  parsed by Spark's SQL parser, so a syntax error still fails, recorded, and not executed.
- `CREATE VOLUME` is Databricks-only syntax: it creates the volume's local folder.
- Open-source Spark has no `information_schema`: `create_empty_information_schema` gives it an
  empty `information_schema.columns` table, so the lakehouse's layout query runs on Spark and
  finds nothing, which is what Databricks answers before the first table of a fresh lakehouse.

Rows come back as Arrow (`DataFrame.toArrow()`), instants as UTC-aware values, both through
`fetch*` and through `fetchall_arrow()`, which the lakehouse reads Bronze with on Databricks.
Spark errors become the connector's `DatabaseError`, with Spark's message.
"""

from __future__ import annotations

import re
import shutil
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa

from grid_assets_tests.databricks_fakes import FakeConnection
from grid_assets_tests.spark_support import delta_ddl_to_parquet

VOLUME_ROOT = "/Volumes/"
_STAGED = re.compile(r"parquet\.`(/Volumes/[^`]+)`")
_PARSED_ONLY = re.compile(r"\s*(MERGE\s+INTO|DELETE\s+FROM)\b", re.IGNORECASE)
_CREATE_VOLUME = re.compile(r"\s*CREATE\s+VOLUME\b", re.IGNORECASE)
_CREATE_DELTA_TABLE = re.compile(r"\s*CREATE\s+TABLE\b.*\bUSING\s+DELTA\b", re.I | re.S)
_LAYOUT_COLUMNS = ("table_schema STRING", "table_name STRING", "column_name STRING")


@dataclass
class LocalVolume:
    """The Files API calls `staging.VolumeStaging` makes (`staging.VolumeFiles`), on local disk:
    `/Volumes/<catalog>/<schema>/<volume>/...` is `<root>/Volumes/<catalog>/...`."""

    root: Path
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def local_path(self, volume_path: str) -> Path:
        if not volume_path.startswith(VOLUME_ROOT) or ".." in volume_path.split("/"):
            raise ValueError(f"not a volume path: {volume_path!r}")
        return self.root / volume_path.lstrip("/")

    def upload(self, file_path: str, contents: BinaryIO, *, overwrite: bool | None = None):
        target = self.local_path(file_path)
        if target.exists() and not overwrite:
            raise FileExistsError(file_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            shutil.copyfileobj(contents, out)
        self.uploaded.append(file_path)

    def delete(self, file_path: str) -> None:
        self.local_path(file_path).unlink()
        self.deleted.append(file_path)

    def list_directory_contents(self, directory_path: str) -> list[Any]:
        from databricks.sdk.errors import NotFound
        from databricks.sdk.service.files import DirectoryEntry

        folder = self.local_path(directory_path.rstrip("/"))
        if not folder.is_dir():
            raise NotFound(f"{directory_path} does not exist")
        return [
            DirectoryEntry(
                path=f"{directory_path.rstrip('/')}/{child.name}",
                name=child.name,
                is_directory=child.is_dir(),
                file_size=None if child.is_dir() else child.stat().st_size,
            )
            for child in sorted(folder.iterdir())
        ]

    def delete_directory(self, directory_path: str) -> None:
        self.local_path(directory_path.rstrip("/")).rmdir()

    def files_left(self) -> list[str]:
        return sorted(
            "/" + str(path.relative_to(self.root))
            for path in (self.root / "Volumes").rglob("*")
            if path.is_file()
        )


def create_empty_information_schema(spark: Any) -> None:
    spark.sql("CREATE DATABASE IF NOT EXISTS information_schema")
    columns = ", ".join(_LAYOUT_COLUMNS)
    spark.sql(f"CREATE TABLE IF NOT EXISTS information_schema.columns ({columns}) USING PARQUET")


def drop_information_schema(spark: Any) -> None:
    spark.sql("DROP DATABASE IF EXISTS information_schema CASCADE")


@dataclass
class SparkWarehouse:
    """What the warehouse received: every statement as sent, those Spark executed and those it
    only parsed (MERGE, DELETE), with their parameters."""

    spark: Any
    volume: LocalVolume
    statements: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    parsed_only: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def local_sql(self, sql: str) -> str:
        """`sql` with each staged file's volume path replaced by its local path; the file must
        be there (it is removed only after the statements reading it have run)."""

        def local(found: re.Match[str]) -> str:
            path = self.volume.local_path(found.group(1))
            if not path.is_file():
                raise AssertionError(f"staged file {found.group(1)} is not in the volume")
            return f"parquet.`{path}`"

        return _STAGED.sub(local, sql)

    def run(self, sql: str, params: dict[str, Any]) -> pa.Table | None:
        """Execute (or parse) one statement; the rows it returns, None when it returns none."""
        with self._lock:
            self.statements.append(sql)
        if _CREATE_VOLUME.match(sql):
            volume = "/".join(sql.split()[-1].split("."))
            self.volume.local_path(f"{VOLUME_ROOT}{volume}").mkdir(parents=True, exist_ok=True)
            return None
        local = self.local_sql(sql)
        if _PARSED_ONLY.match(sql):
            self.spark._jsparkSession.sessionState().sqlParser().parsePlan(local)
            with self._lock:
                self.parsed_only.append(sql)
            return None
        if _CREATE_DELTA_TABLE.match(sql):
            local = delta_ddl_to_parquet(local)
        frame = self.spark.sql(local, args=params or None)
        with self._lock:
            self.executed.append(sql)
        if not frame.columns:
            return None
        return utc_instants(frame.toArrow())

    def module(self) -> types.ModuleType:
        """The PEP 249 module to pass as `dbapi=`: connections and cursors over this warehouse."""
        from databricks.sql import exc as dbx

        warehouse = self

        class Cursor:
            rowcount = -1
            arraysize = 1

            def __init__(self) -> None:
                self.result: pa.Table | None = None
                self.rows: list[tuple] = []

            def execute(self, operation: str, parameters: dict[str, Any] | None = None) -> None:
                try:
                    self.result = warehouse.run(operation, dict(parameters or {}))
                except AssertionError:
                    raise
                except Exception as exc:  # Spark's own errors, as the connector raises them
                    raise dbx.DatabaseError(f"{type(exc).__name__}: {exc}") from exc
                self.rows = [] if self.result is None else _tuples(self.result)

            @property
            def description(self):
                if self.result is None:
                    return None
                return [
                    (f.name, str(f.type), None, None, None, None, f.nullable)
                    for f in self.result.schema
                ]

            def fetchall(self) -> list[tuple]:
                rows, self.rows = self.rows, []
                return rows

            def fetchone(self) -> tuple | None:
                return self.rows.pop(0) if self.rows else None

            def fetchmany(self, size: int | None = None) -> list[tuple]:
                size = size or self.arraysize
                rows, self.rows = self.rows[:size], self.rows[size:]
                return rows

            def fetchall_arrow(self) -> pa.Table:
                if self.result is None:
                    raise dbx.Error("the statement returned no result set")
                table, self.result, self.rows = self.result, None, []
                return table

            def close(self) -> None:
                self.result, self.rows = None, []

        class Connection(FakeConnection):
            def cursor(self) -> Cursor:
                return Cursor()

        module = types.ModuleType("spark_warehouse")
        module.connect = lambda *a, **k: Connection()  # type: ignore[attr-defined]
        module.paramstyle = "named"  # type: ignore[attr-defined]
        module.apilevel = "2.0"  # type: ignore[attr-defined]
        module.threadsafety = 1  # type: ignore[attr-defined]
        for name in ("Error", "Warning", "InterfaceError", "DatabaseError", "OperationalError"):
            setattr(module, name, getattr(dbx, name))
        return module


def utc_instants(table: pa.Table) -> pa.Table:
    """Every timestamp column as UTC-aware microseconds, as the connector returns instants."""
    fields = [
        f.with_type(pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def _tuples(table: pa.Table) -> list[tuple]:
    columns = [column.to_pylist() for column in table.columns]
    return list(zip(*columns, strict=True)) if columns else []
