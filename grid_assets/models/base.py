"""Shared metadata and column types, with per-dialect variants so one model serves DuckDB and
Databricks alike."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import DateTime, Dialect, MetaData, Numeric, String, Table, Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.schema import PrimaryKeyConstraint
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class _DatabricksTimestamp(TypeDecorator):
    """The Databricks dialect's TIMESTAMP (an instant, UTC-aware on the way back), loaded only
    when that dialect asks for it: its package brings the SQL connector's whole stack (Thrift,
    auth, cloud fetch), about a second of every local run's start-up that the local engine
    never needs."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine:
        from databricks.sqlalchemy import TIMESTAMP

        return dialect.type_descriptor(TIMESTAMP())


# Databricks compiles DateTime(timezone=True) to TIMESTAMP_NTZ; instants need its TIMESTAMP.
Instant = DateTime(timezone=True).with_variant(_DatabricksTimestamp(), "databricks")
# Six decimal places is what the contract allows on input; 18 digits leaves 12 for the integer part.
Money = Numeric(18, 6, asdecimal=True)
Amount = Numeric(18, 2, asdecimal=True)
# Raw JSON is kept as text so it is byte-for-byte what GRID sent (Databricks: STRING).
JsonText = Text()
Key = String()
# Column `info` for a Silver column of event ids (random text, each mostly once): on DuckDB
# stored as it is. Its dictionary/FSST compression roughly halved such a column but cost about
# 0.7 CPU-s per million values at every commit's checkpoint, work Silver's writer waits on;
# low-cardinality text (types, statuses, currencies) keeps DuckDB's choice. See
# lakehouse.duckdb (`USING COMPRESSION`, new tables only) and docs/performance.md.
EVENT_IDS_STORED_PLAIN = {"duckdb_compression": "uncompressed"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Every model here maps one Table (never a join or a selectable): say so to type checkers.
    __table__: ClassVar[Table]  # pyright: ignore[reportIncompatibleVariableOverride]


LAYERS = ("bronze", "silver", "gold")


@compiles(PrimaryKeyConstraint, "duckdb")
def _key_not_indexed(constraint: PrimaryKeyConstraint, compiler, **kw) -> None:
    """On DuckDB, a table's key is declared in its model but not created as a constraint.

    DuckDB enforces a PRIMARY KEY with an ART index that is not buffer-managed: it stays resident
    and grows with the table (about 90 MiB per million `bronze.events` rows), so the process's
    memory would grow with the lakehouse, not with the batch. Keys hold the way they do on
    Databricks, where they are informational: every write is an anti-join insert or a MERGE on
    the key, and the checks count any row beyond its grain (`event_ids_unique` for Bronze,
    `silver_rules_hold` and `events_reconcile` for Silver).
    """
    return None
