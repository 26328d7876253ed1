"""Gold: analytical tables recomputed inside the engine from Silver on every run."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, Integer
from sqlalchemy.orm import Mapped, mapped_column

from grid_assets.models.base import Amount, Base, Instant, Key

# Column descriptions several Gold tables share (Databricks stores them as column COMMENTs).
REVENUE = (
    "Net revenue of non-cancelled orders: the sum of quantity * unit_price * (1 - discount), "
    "rounded half-up to cents once, at the end."
)
CURRENCY = "Three-letter currency of the orders (USD for an order without one); part of the grain."
UNITS = "Units sold in non-cancelled orders."
COMPUTED_AT = "When this table was last rebuilt from Silver, in UTC."


class RevenueByCategory(Base):
    """Net revenue of non-cancelled orders by the product's current category (`unknown` when the
    product was never seen), in the orders' own currency: amounts in different currencies are
    never added together. One row per category and currency."""

    __tablename__ = "revenue_by_category"
    __table_args__ = {"schema": "gold"}

    category: Mapped[str] = mapped_column(
        Key,
        primary_key=True,
        comment="Current category of the products sold; unknown for products never seen.",
    )
    currency: Mapped[str] = mapped_column(Key, primary_key=True, comment=CURRENCY)
    revenue: Mapped[Decimal] = mapped_column(Amount, nullable=False, comment=REVENUE)
    order_count: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment="Distinct non-cancelled orders with a line in this category.",
    )
    units: Mapped[int] = mapped_column(BigInteger, nullable=False, comment=UNITS)
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False, comment=COMPUTED_AT)


class DailyRevenue(Base):
    """Net revenue of non-cancelled orders by the UTC date they were placed, in the orders' own
    currency. One row per UTC order date and currency."""

    __tablename__ = "daily_revenue"
    __table_args__ = {"schema": "gold"}

    order_date: Mapped[date] = mapped_column(
        Date, primary_key=True, comment="UTC date on which the orders were placed."
    )
    currency: Mapped[str] = mapped_column(Key, primary_key=True, comment=CURRENCY)
    revenue: Mapped[Decimal] = mapped_column(Amount, nullable=False, comment=REVENUE)
    order_count: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Distinct non-cancelled orders placed that day."
    )
    average_order_value: Mapped[Decimal] = mapped_column(
        Amount, nullable=False, comment="revenue / order_count, rounded half-up to cents."
    )
    units: Mapped[int] = mapped_column(BigInteger, nullable=False, comment=UNITS)
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False, comment=COMPUTED_AT)


class OrderStatusCounts(Base):
    """How many orders are in each lifecycle status now. One row per status."""

    __tablename__ = "order_status_counts"
    __table_args__ = {"schema": "gold"}

    status: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="Order status: placed, paid, shipped or cancelled."
    )
    order_count: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Orders whose current status this is."
    )
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False, comment=COMPUTED_AT)


class ProductRevenue(Base):
    """Net revenue, units and orders per product sold in non-cancelled orders, in the orders' own
    currency, ranked by revenue within that currency (`revenue_rank` 1 = top seller). One row per
    product sold and currency."""

    __tablename__ = "product_revenue"
    __table_args__ = {"schema": "gold"}

    product_id: Mapped[str] = mapped_column(Key, primary_key=True, comment="Product sold.")
    currency: Mapped[str] = mapped_column(Key, primary_key=True, comment=CURRENCY)
    product_name: Mapped[str | None] = mapped_column(
        Key, comment="Current name of the product; null when never seen or unnamed."
    )
    category: Mapped[str] = mapped_column(
        Key, nullable=False, comment="Current category of the product; unknown when never seen."
    )
    revenue: Mapped[Decimal] = mapped_column(Amount, nullable=False, comment=REVENUE)
    units: Mapped[int] = mapped_column(BigInteger, nullable=False, comment=UNITS)
    order_count: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Distinct non-cancelled orders with the product."
    )
    revenue_rank: Mapped[int] = mapped_column(
        Integer,
        nullable=False,
        comment=(
            "1 for the highest revenue in this currency, then 2, ...; ties go to the lower "
            "product_id."
        ),
    )
    computed_at: Mapped[datetime] = mapped_column(Instant, nullable=False, comment=COMPUTED_AT)
