"""SQLAlchemy models of every lakehouse table, one module per layer; no Dagster imports.

Importing the package registers every layer's tables on the one shared MetaData.
"""

from grid_assets.models import bronze, gold, silver
from grid_assets.models.base import Base

metadata = Base.metadata

__all__ = ["Base", "bronze", "gold", "metadata", "silver"]
