"""Each layer's unit of work against a Lakehouse; Dagster assets are thin wrappers over these."""
