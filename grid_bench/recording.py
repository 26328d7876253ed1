"""A recording Databricks warehouse and an in-memory volume: the production write path, offline.

`RecordingWarehouse.module()` is a PEP 249 module for `databricks_engine(..., dbapi=...)` that
records every statement and answers just enough for Bronze, Silver and Gold to run as on a fresh
warehouse; `MemoryVolume` stands in for the Files API. The statement budget
(`grid bench --databricks-statements`) runs on them, and so do the tests of the write path.
"""

from __future__ import annotations

import io
import re
import types


class _Connection:
    """A PEP 249 connection whose transaction and close calls are no-ops (Databricks has no
    transactions)."""

    def __init__(self, cursor_factory) -> None:
        self.cursor = cursor_factory

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


class MemoryVolume:
    """The Files API calls `staging.VolumeStaging` makes, kept in memory: what was uploaded
    (name, size, rows, columns), what is there now."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.uploads: list[tuple[str, int, int, int]] = []  # path, bytes, rows, columns

    def upload(self, file_path: str, contents, *, overwrite: bool | None = None) -> None:
        import pyarrow.parquet as pq

        data = contents.read()
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        self.uploads.append((file_path, len(data), meta.num_rows, meta.num_columns))
        self.files[file_path] = data

    def delete(self, file_path: str) -> None:
        del self.files[file_path]

    def list_directory_contents(self, directory_path: str):
        from databricks.sdk.service.files import DirectoryEntry

        prefix = directory_path.rstrip("/") + "/"
        children = {p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)}
        return [
            DirectoryEntry(
                path=prefix + name,
                name=name,
                is_directory=prefix + name not in self.files,
                file_size=len(self.files.get(prefix + name, b"")),
            )
            for name in sorted(children)
        ]

    def delete_directory(self, directory_path: str) -> None:
        pass

    def read(self, path: str):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(self.files[path]))


_PARQUET = re.compile(r"FROM parquet\.`([^`]+)`")
_RANGE = re.compile(r"ingest_seq > %\(|ingest_seq > :")


class RecordingWarehouse:
    """A PEP 249 module standing in for `databricks.sql`: it records every statement and
    answers just enough for Bronze, Silver and Gold to run as on a fresh warehouse.

    It keeps `bronze.events` (ids, hashes, payloads, arrival positions) from the staged Parquet
    files the loads name, so Bronze tells duplicates and conflicts as it would, and Silver reads
    back what Bronze stored. Every other table is write-only: reads of them find nothing."""

    def __init__(self, volume: MemoryVolume) -> None:
        self.volume = volume
        self.statements: list[str] = []
        self.seq = 0
        self.events: list[dict] = []
        self.stored: dict[str, tuple[str, str]] = {}

    def _answer(self, sql: str, params: dict) -> tuple[list[str], list[tuple]] | None:
        from databricks.sql import exc as dbx

        head = " ".join(sql.split()[:3])
        if head.startswith("DESCRIBE TABLE EXTENDED"):
            raise dbx.DatabaseError("[TABLE_OR_VIEW_NOT_FOUND] The table cannot be found.")
        staged = _PARQUET.search(sql)
        if head.startswith("SELECT coalesce(max(") and "ingest_seq" in sql:
            return ["seq"], [(self.seq,)]
        if head.startswith("SELECT count(*)"):
            return ["count"], [(0,)]
        if head.startswith("INSERT INTO") and sql.split()[2].endswith("bronze.events"):
            if staged is None:  # one pipeline event
                self.seq += 1
                return None
            rows = self.volume.read(staged.group(1)).sort_by("batch_pos").to_pylist()
            for row in rows:
                if row["event_id"] not in self.stored:
                    self.seq += 1
                    self.stored[row["event_id"]] = (row["envelope_hash"], row["payload"])
                    self.events.append({**row, "ingest_seq": self.seq})
            return None
        if head.startswith("SELECT") and staged and "batch_pos" in sql.split("FROM")[0]:
            rows = self.volume.read(staged.group(1)).to_pylist()
            found = [
                (r["batch_pos"], *self.stored[r["event_id"]])
                for r in rows
                if r["event_id"] in self.stored
            ]
            return ["batch_pos", "envelope_hash", "payload"], found
        if head.startswith("SELECT") and _RANGE.search(sql):
            low, high = params["ingest_seq_1"], params["ingest_seq_2"]
            names = ["event_id", "ingest_seq", "event_type", "occurred_at", "payload"]
            rows = [
                tuple(e[n] for n in names)
                for e in self.events
                if low < e["ingest_seq"] <= high and not e["event_type"].startswith("pipeline.")
            ]
            return names, rows
        if head.startswith(("SELECT", "DESCRIBE")):
            return ["value"], []
        return None

    def module(self) -> types.ModuleType:
        import pyarrow as pa
        from databricks.sql import exc as dbx

        warehouse = self

        class Cursor:
            rowcount = -1
            arraysize = 1

            def __init__(self) -> None:
                self.names: list[str] | None = None
                self.rows: list[tuple] = []

            def execute(self, operation: str, parameters=None) -> None:
                warehouse.statements.append(operation)
                answer = warehouse._answer(operation, parameters or {})
                self.names, self.rows = answer if answer is not None else (None, [])

            @property
            def description(self):
                if self.names is None:
                    return None
                return [(n, "string", None, None, None, None, None) for n in self.names]

            def fetchall(self):
                rows, self.rows = self.rows, []
                return rows

            def fetchone(self):
                return self.rows.pop(0) if self.rows else None

            def fetchmany(self, size=None):
                return self.fetchall()

            def fetchall_arrow(self):
                names, rows = self.names or [], self.fetchall()
                columns = {n: [r[i] for r in rows] for i, n in enumerate(names)}
                if "occurred_at" in columns:
                    stamps = pa.array(columns["occurred_at"], pa.timestamp("us", tz="UTC"))
                    return pa.table({**columns, "occurred_at": stamps})
                return pa.table(columns)

            def close(self) -> None:
                pass

        module = types.ModuleType("recording_warehouse")
        module.connect = lambda *a, **k: _Connection(Cursor)  # type: ignore[attr-defined]
        module.paramstyle = "named"  # type: ignore[attr-defined]
        module.apilevel = "2.0"  # type: ignore[attr-defined]
        module.threadsafety = 1  # type: ignore[attr-defined]
        for name in ("Error", "Warning", "InterfaceError", "DatabaseError", "OperationalError"):
            setattr(module, name, getattr(dbx, name))
        return module
