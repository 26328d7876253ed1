"""Pure transformations from Bronze rows to validated Silver rows; no Dagster, no database."""
