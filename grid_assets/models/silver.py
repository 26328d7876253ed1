"""Silver: typed, validated current state of the commerce domain, latest-wins by occurred_at."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Integer
from sqlalchemy.orm import Mapped, mapped_column

from grid_assets.models.base import EVENT_IDS_STORED_PLAIN, Base, Instant, JsonText, Key, Money


class Product(Base):
    """A product as its latest `product.created`/`product.updated` event describes it.

    One row per product.
    """

    __tablename__ = "products"
    __table_args__ = {"schema": "silver"}

    product_id: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="Product id from the catalog events; the table's key."
    )
    name: Mapped[str | None] = mapped_column(
        Key, comment="Product name from its latest product event; null when that event gave none."
    )
    category: Mapped[str] = mapped_column(
        Key, nullable=False, comment="Product category from its latest product event."
    )
    unit_price: Mapped[Decimal] = mapped_column(
        Money,
        nullable=False,
        comment="List price from its latest product event, exact to 6 decimal places, in currency.",
    )
    currency: Mapped[str] = mapped_column(
        Key, nullable=False, comment="Three-letter currency code of unit_price."
    )
    active: Mapped[bool] = mapped_column(
        Boolean,
        nullable=False,
        comment="Whether the product is on sale (true when the event does not say).",
    )
    updated_at: Mapped[datetime] = mapped_column(
        Instant,
        nullable=False,
        comment="When the product event this row comes from occurred, in UTC: latest wins.",
    )
    event_id: Mapped[str] = mapped_column(
        Key, nullable=False, comment="The bronze.events event this row comes from."
    )


class Order(Base):
    """An order's current status (its latest event) and its latest valid placement.

    `placed_*` columns are null while only later lifecycle events have arrived.
    One row per order.
    """

    __tablename__ = "orders"
    __table_args__ = {"schema": "silver"}

    order_id: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="Order id; the table's key."
    )
    customer_id: Mapped[str | None] = mapped_column(
        Key,
        info={"pii": True},
        comment=(
            "Pseudonymous id of the customer, from the latest placement (personal data); null "
            "until a placement arrives."
        ),
    )
    status: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment=(
            "Current status, that of the order's latest event: placed, paid, shipped or cancelled."
        ),
    )
    currency: Mapped[str | None] = mapped_column(
        Key,
        comment=(
            "Three-letter currency of the order's lines, from the latest placement; null until it "
            "arrives (Gold reads null as USD)."
        ),
    )
    placed_at: Mapped[datetime | None] = mapped_column(
        Instant, comment="When the latest valid placement occurred, in UTC; null until it arrives."
    )
    updated_at: Mapped[datetime] = mapped_column(
        Instant,
        nullable=False,
        comment="When the order's latest event of any kind occurred, in UTC.",
    )
    status_event_id: Mapped[str] = mapped_column(
        Key, nullable=False, info=EVENT_IDS_STORED_PLAIN, comment="The event that set status."
    )
    placed_event_id: Mapped[str | None] = mapped_column(
        Key,
        info=EVENT_IDS_STORED_PLAIN,
        comment=(
            "The order.placed event that customer_id, currency, placed_at and the lines come from; "
            "null until it arrives."
        ),
    )


class OrderItem(Base):
    """A line of an order, from the order's latest valid `order.placed` event.

    One row per order line.
    """

    __tablename__ = "order_items"
    __table_args__ = {"schema": "silver"}

    order_id: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="The order this line belongs to."
    )
    line_number: Mapped[int] = mapped_column(
        Integer, primary_key=True, comment="Position of the line in the placement's items, from 1."
    )
    product_id: Mapped[str] = mapped_column(
        Key, nullable=False, comment="Product ordered; may be one never seen in silver.products."
    )
    quantity: Mapped[int] = mapped_column(
        Integer, nullable=False, comment="Units ordered, an integer above 0."
    )
    unit_price: Mapped[Decimal] = mapped_column(
        Money,
        nullable=False,
        comment="Price per unit on this line, exact to 6 decimal places, in the order's currency.",
    )
    discount: Mapped[Decimal] = mapped_column(
        Money,
        nullable=False,
        comment=(
            "Fraction taken off the line, in [0, 1): the line is worth "
            "quantity * unit_price * (1 - discount)."
        ),
    )
    event_id: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        info=EVENT_IDS_STORED_PLAIN,
        comment="The order.placed event the line comes from (the order's placed_event_id).",
    )


class Quarantine(Base):
    """A domain event that broke Silver rules, with every rule it broke (`reasons`, JSON list).

    One row per quarantined event.
    """

    __tablename__ = "quarantine"
    __table_args__ = {"schema": "silver"}

    event_id: Mapped[str] = mapped_column(
        Key, primary_key=True, comment="The quarantined event, as stored in bronze.events."
    )
    event_type: Mapped[str] = mapped_column(Key, nullable=False, comment="Its event type.")
    reasons: Mapped[str] = mapped_column(
        JsonText,
        nullable=False,
        comment="JSON list of every rule the event broke, sorted, without repeats.",
    )
    occurred_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When the event happened, in UTC."
    )
    quarantined_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When Silver quarantined it, in UTC."
    )
    run_id: Mapped[str | None] = mapped_column(
        Key, comment="Dagster run that quarantined the event."
    )


class EventLedger(Base):
    """What Silver did with each GRID event it read: `applied`, `quarantined`, `unknown_type`
    (stored in Bronze, not a domain event Silver knows) or `not_domain` (heartbeats).

    The reconciliation check proves every Bronze event up to the cursor appears here once.
    One row per GRID event processed by Silver.
    """

    __tablename__ = "event_ledger"
    __table_args__ = {"schema": "silver"}

    event_id: Mapped[str] = mapped_column(
        Key,
        primary_key=True,
        info=EVENT_IDS_STORED_PLAIN,
        comment="A GRID event Silver read from bronze.events.",
    )
    ingest_seq: Mapped[int] = mapped_column(
        BigInteger, nullable=False, comment="Its arrival position in bronze.events."
    )
    event_type: Mapped[str] = mapped_column(Key, nullable=False, comment="Its event type.")
    outcome: Mapped[str] = mapped_column(
        Key,
        nullable=False,
        comment=(
            "What Silver did with it: applied, quarantined, unknown_type or not_domain "
            "(heartbeats)."
        ),
    )
    processed_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When Silver processed it, in UTC."
    )
    run_id: Mapped[str | None] = mapped_column(Key, comment="Dagster run that processed the event.")


class Cursor(Base):
    """How far a consumer has read `bronze.events` (by ingest_seq). One row per consumer."""

    __tablename__ = "cursors"
    __table_args__ = {"schema": "silver"}

    consumer: Mapped[str] = mapped_column(
        Key,
        primary_key=True,
        comment="The reader of bronze.events this position belongs to (silver).",
    )
    last_ingest_seq: Mapped[int] = mapped_column(
        BigInteger,
        nullable=False,
        comment="Highest bronze.events ingest_seq the consumer has processed.",
    )
    updated_at: Mapped[datetime] = mapped_column(
        Instant, nullable=False, comment="When the position last moved, in UTC."
    )
