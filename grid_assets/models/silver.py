"""Silver: typed, validated current state of the commerce domain, latest-wins by occurred_at."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Integer
from sqlalchemy.orm import Mapped, mapped_column

from grid_assets.models.base import Base, Instant, JsonText, Key, Money


class Product(Base):
    """A product as its latest `product.created`/`product.updated` event describes it.

    One row per product.
    """

    __tablename__ = "products"
    __table_args__ = {"schema": "silver"}

    product_id: Mapped[str] = mapped_column(Key, primary_key=True)
    name: Mapped[str | None] = mapped_column(Key)
    category: Mapped[str] = mapped_column(Key, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Money, nullable=False)
    currency: Mapped[str] = mapped_column(Key, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    event_id: Mapped[str] = mapped_column(Key, nullable=False)


class Order(Base):
    """An order's current status (its latest event) and its latest valid placement.

    `placed_*` columns are null while only later lifecycle events have arrived.
    One row per order.
    """

    __tablename__ = "orders"
    __table_args__ = {"schema": "silver"}

    order_id: Mapped[str] = mapped_column(Key, primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(Key)
    status: Mapped[str] = mapped_column(Key, nullable=False)
    currency: Mapped[str | None] = mapped_column(Key)
    placed_at: Mapped[datetime | None] = mapped_column(Instant)
    updated_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    status_event_id: Mapped[str] = mapped_column(Key, nullable=False)
    placed_event_id: Mapped[str | None] = mapped_column(Key)


class OrderItem(Base):
    """A line of an order, from the order's latest valid `order.placed` event.

    One row per order line.
    """

    __tablename__ = "order_items"
    __table_args__ = {"schema": "silver"}

    order_id: Mapped[str] = mapped_column(Key, primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[str] = mapped_column(Key, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[Decimal] = mapped_column(Money, nullable=False)
    discount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    event_id: Mapped[str] = mapped_column(Key, nullable=False)


class Quarantine(Base):
    """A domain event that broke Silver rules, with every rule it broke (`reasons`, JSON list).

    One row per quarantined event.
    """

    __tablename__ = "quarantine"
    __table_args__ = {"schema": "silver"}

    event_id: Mapped[str] = mapped_column(Key, primary_key=True)
    event_type: Mapped[str] = mapped_column(Key, nullable=False)
    reasons: Mapped[str] = mapped_column(JsonText, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    quarantined_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    run_id: Mapped[str | None] = mapped_column(Key)


class EventLedger(Base):
    """What Silver did with each GRID event it read: `applied`, `quarantined`, `unknown_type`
    (stored in Bronze, not a domain event Silver knows) or `not_domain` (heartbeats).

    The reconciliation check proves every Bronze event up to the cursor appears here once.
    One row per GRID event processed by Silver.
    """

    __tablename__ = "event_ledger"
    __table_args__ = {"schema": "silver"}

    event_id: Mapped[str] = mapped_column(Key, primary_key=True)
    ingest_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_type: Mapped[str] = mapped_column(Key, nullable=False)
    outcome: Mapped[str] = mapped_column(Key, nullable=False)
    processed_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
    run_id: Mapped[str | None] = mapped_column(Key)


class Cursor(Base):
    """How far a consumer has read `bronze.events` (by ingest_seq). One row per consumer."""

    __tablename__ = "cursors"
    __table_args__ = {"schema": "silver"}

    consumer: Mapped[str] = mapped_column(Key, primary_key=True)
    last_ingest_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(Instant, nullable=False)
