"""The lakehouse without Dagster: one `Lakehouse` over one engine-specific backend.

- `core`: `Lakehouse` (connections, units of work, DDL, the write paths every layer uses) and
  the `Backend` interface;
- `duckdb`: the embedded file (lock wait, memory limit, Arrow scans);
- `databricks`: the SQL warehouse (bounded connect, masked errors, staged Parquet files);
- `staging`: how a batch of rows becomes a relation SQL can read.

`grid_assets.resources.lakehouse.LakehouseResource` builds one from validated configuration.
"""
