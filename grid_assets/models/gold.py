"""Gold: analytical tables recomputed inside the engine from Silver on every run."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, Integer
from sqlalchemy.orm import Mapped, mapped_column

from grid_assets.models.base import Amount, Base, Instant, Key


class RevenueByCategory(Base):
    """Net revenue of non-cancelled orders by the product's current category (`unknown` when the
    product was never seen), in the orders' own currency: amounts in different currencies are
    never added together. One row per category and currency."""

    __tablename__ = "revenue_by_category"
    __table_args__ = {"schema": "gold"}

    category: Mapped[str] = mapped_column(Key, primary_key=True)
    currency: Mapped[str] = mapped_column(Key, primary_key=True)
    revenue: Mapped[Decimal] = mapped_column(Amount, nullable=False)
    order_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False)


class DailyRevenue(Base):
    """Net revenue of non-cancelled orders by the UTC date they were placed, in the orders' own
    currency. One row per UTC order date and currency."""

    __tablename__ = "daily_revenue"
    __table_args__ = {"schema": "gold"}

    order_date: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(Key, primary_key=True)
    revenue: Mapped[Decimal] = mapped_column(Amount, nullable=False)
    order_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    average_order_value: Mapped[Decimal] = mapped_column(Amount, nullable=False)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False)


class OrderStatusCounts(Base):
    """How many orders are in each lifecycle status now. One row per status."""

    __tablename__ = "order_status_counts"
    __table_args__ = {"schema": "gold"}

    status: Mapped[str] = mapped_column(Key, primary_key=True)
    order_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False)


class ProductRevenue(Base):
    """Net revenue, units and orders per product sold in non-cancelled orders, in the orders' own
    currency, ranked by revenue within that currency (`revenue_rank` 1 = top seller). One row per
    product sold and currency."""

    __tablename__ = "product_revenue"
    __table_args__ = {"schema": "gold"}

    product_id: Mapped[str] = mapped_column(Key, primary_key=True)
    currency: Mapped[str] = mapped_column(Key, primary_key=True)
    product_name: Mapped[str | None] = mapped_column(Key)
    category: Mapped[str] = mapped_column(Key, nullable=False)
    revenue: Mapped[Decimal] = mapped_column(Amount, nullable=False)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False)
    order_count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    revenue_rank: Mapped[int] = mapped_column(Integer, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
