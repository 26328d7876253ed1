"""Pure builders of SQLAlchemy statements (no I/O); every dialect difference lives in dialect.py."""
