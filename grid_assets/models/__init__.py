"""SQLAlchemy models of every lakehouse table, one module per layer; no Dagster imports."""
