"""Tier 2: Silver current state, latest-wins, quarantine and reconciliation on DuckDB."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import delete, select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.silver import (
    Cursor,
    EventLedger,
    Order,
    OrderItem,
    Product,
    Quarantine,
)
from grid_assets.queries.checks import ledger_outcomes, reconciliation, unaccounted_events
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import write_events


def event(event_id: str, event_type: str, at: str, **payload: object) -> dict:
    return {"event_id": event_id, "event_type": event_type, "occurred_at": at, "payload": payload}


def product(event_id: str, at: str, pid: str = "P1", **fields: object) -> dict:
    return event(
        event_id,
        "product.updated",
        at,
        product_id=pid,
        **{"category": "tools", "unit_price": "10.00", **fields},
    )


def placed(event_id: str, at: str, oid: str = "O1", items: list | None = None, **fields) -> dict:
    items = items if items is not None else [{"product_id": "P1", "quantity": 1, "unit_price": "5"}]
    return event(event_id, "order.placed", at, order_id=oid, items=items, **fields)


def step(lh: Lakehouse, landing: Path, name: str, lines: list) -> None:
    write_events(landing / f"{name}.ndjson", lines)
    ingest_landing(lh, landing)
    apply_new_events(lh)


def rows(lh: Lakehouse, model: type, *columns: str) -> list[tuple]:
    table = model.__table__
    with lh.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(*(table.c[c] for c in columns)).order_by(*(table.c[c] for c in columns))
            )
        ]


def test_latest_wins_across_runs_whatever_the_arrival_order(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    step(lakehouse, landing, "1", [product("b", "2026-01-02T00:00:00Z", unit_price="20.00")])
    # Older event arriving late must not overwrite; a tie on occurred_at goes to the larger id.
    step(
        lakehouse,
        landing,
        "2",
        [
            product("a", "2026-01-01T00:00:00Z", unit_price="1.00"),
            product("c", "2026-01-02T02:00:00+02:00", unit_price="30.00"),
        ],
    )
    assert rows(lakehouse, Product, "product_id", "unit_price", "event_id") == [
        ("P1", Decimal("30.000000"), "c")
    ]


def test_order_status_follows_occurred_at_not_arrival(tmp_path: Path, lakehouse: Lakehouse) -> None:
    landing = tmp_path / "landing"
    step(
        lakehouse, landing, "1", [event("p2", "order.paid", "2026-01-01T10:00:00Z", order_id="O1")]
    )
    assert rows(lakehouse, Order, "order_id", "status") == [("O1", "paid")]
    step(lakehouse, landing, "2", [placed("p1", "2026-01-01T09:00:00Z", customer_id="C1")])
    [(status, customer, placed_event)] = rows(
        lakehouse, Order, "status", "customer_id", "placed_event_id"
    )
    assert (status, customer, placed_event) == ("paid", "C1", "p1")
    assert rows(lakehouse, OrderItem, "order_id", "line_number", "event_id") == [("O1", 1, "p1")]
    step(
        lakehouse,
        landing,
        "3",
        [event("p3", "order.cancelled", "2026-01-01T11:00:00Z", order_id="O1", reason="fraud")],
    )
    assert rows(lakehouse, Order, "status") == [("cancelled",)]


def test_lines_come_from_the_latest_valid_placement(tmp_path: Path, lakehouse: Lakehouse) -> None:
    landing = tmp_path / "landing"
    two_lines = [
        {"product_id": "P1", "quantity": 1, "unit_price": "5"},
        {"product_id": "P2", "quantity": 2, "unit_price": "6", "discount": "0.5"},
    ]
    one_line = [{"product_id": "P3", "quantity": 3, "unit_price": "7"}]
    step(lakehouse, landing, "1", [placed("v1", "2026-01-01T00:00:00Z", items=two_lines)])
    step(
        lakehouse,
        landing,
        "2",
        [
            placed("v2", "2026-01-02T00:00:00Z", items=one_line),
            placed(
                "v3",
                "2026-01-03T00:00:00Z",
                items=[{"product_id": "P9", "quantity": 0, "unit_price": "1"}],
            ),  # invalid: ignored
            placed("v0", "2025-12-31T00:00:00Z", items=two_lines),  # older: ignored
        ],
    )
    assert rows(lakehouse, OrderItem, "line_number", "product_id", "quantity", "event_id") == [
        (1, "P3", 3, "v2")
    ]


def test_quarantine_keeps_every_broken_rule_and_reconciles(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    step(
        lakehouse,
        landing,
        "1",
        [
            event("bad-product", "product.created", "2026-01-01T00:00:00Z", unit_price="-1"),
            placed(
                "bad-order",
                "2026-01-01T00:00:00Z",
                oid="O9",
                items=[
                    {
                        "product_id": "P1",
                        "quantity": 1.5,
                        "unit_price": "1.1234567",
                        "discount": 1.5,
                    }
                ],
            ),
            placed("empty", "2026-01-01T00:00:00Z", oid="O8", items=[]),
            product("good", "2026-01-01T00:00:00Z"),
            event("hb", "system.heartbeat", "2026-01-01T00:00:00Z"),
            event("new-kind", "customer.signed_up", "2026-01-01T00:00:00Z", customer_id="C1"),
        ],
    )
    reasons = {eid: json.loads(r) for eid, r in rows(lakehouse, Quarantine, "event_id", "reasons")}
    assert reasons == {
        "bad-product": [
            "category: not_nullable",
            "product_id: not_nullable",
            "unit_price: decimal_ge_0_max_6_places",
        ],
        "bad-order": [
            "items[1].discount: decimal_in_0_1_max_6_places",
            "items[1].quantity: integer_gt_0",
            "items[1].unit_price: decimal_ge_0_max_6_places",
        ],
        "empty": ["items: non_empty_list"],
    }
    assert rows(lakehouse, Order, "order_id") == []  # nothing of a quarantined event applies
    outcomes = dict(rows(lakehouse, EventLedger, "event_id", "outcome"))
    assert outcomes == {
        "bad-product": "quarantined",
        "bad-order": "quarantined",
        "empty": "quarantined",
        "good": "applied",
        "hb": "not_domain",
        "new-kind": "unknown_type",
    }
    with lakehouse.connect() as conn:
        recon = conn.execute(reconciliation()).one()._asdict()
        ledger = {outcome: int(n) for outcome, n in conn.execute(ledger_outcomes())}
        unaccounted = conn.execute(unaccounted_events()).scalar_one()
    assert recon["bronze_events"] == sum(ledger.values()) == 6
    assert recon["bronze_fingerprint"] == recon["ledger_fingerprint"] and unaccounted == 0
    assert recon["quarantine_rows"] == ledger["quarantined"] == 3


def test_rerun_is_idempotent_and_pipeline_events_are_not_reprocessed(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    step(
        lakehouse,
        landing,
        "1",
        [product("a", "2026-01-01T00:00:00Z"), placed("o", "2026-01-01T00:00:00Z")],
    )
    snapshot = [
        rows(lakehouse, m, *[c.name for c in m.__table__.c])
        for m in (Product, Order, OrderItem, Quarantine)
    ]
    again = apply_new_events(lakehouse)
    assert again.events_read == 0
    assert [
        rows(lakehouse, m, *[c.name for c in m.__table__.c])
        for m in (Product, Order, OrderItem, Quarantine)
    ] == snapshot


def test_batches_redone_after_a_lost_cursor_write_nothing_twice(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    """What an engine without transactions leaves after a crash between a batch's writes and its
    cursor: the batches are applied again onto their own rows. The ledger's lookup of the rows
    already there reads only the batch's arrival window; every row must still be found."""
    landing = tmp_path / "landing"
    write_events(
        landing / "1.ndjson",
        [product(f"p{n}", f"2026-01-01T00:{n:02d}:00Z", pid=f"P{n}") for n in range(7)]
        + [
            placed("o", "2026-01-02T00:00:00Z"),
            product("q", "2026-01-03T00:00:00Z", unit_price="-1"),
        ],
    )
    ingest_landing(lakehouse, landing)
    apply_new_events(lakehouse, batch_events=3)
    tables = (EventLedger, Product, Order, OrderItem, Quarantine)

    def everything() -> list[list[tuple]]:
        return [
            rows(lakehouse, m, *[c.name for c in m.__table__.c if c.name != "processed_at"])
            for m in tables
        ]

    before = everything()
    assert len(before[0]) == 9 and len(before[-1]) == 1  # the ledger has the quarantined one too
    with lakehouse.begin() as conn:
        conn.execute(delete(Cursor.__table__))
    redone = apply_new_events(lakehouse, batch_events=3)
    assert redone.events_read == 9
    assert everything() == before


def test_values_outside_the_column_types_are_quarantined_not_fatal(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    """A quantity beyond INT and money strings that Decimal() alone would take are rule breaks;
    instants far from today (pandas' nanoseconds end in 2262) still apply."""
    line = {"product_id": "P1", "quantity": 2**31, "unit_price": "1"}
    largest = {**line, "quantity": 2**31 - 1}
    step(
        lakehouse,
        tmp_path / "landing",
        "1",
        [
            placed("huge", "2026-01-01T00:00:00Z", oid="O1", items=[line]),
            placed("max", "2026-01-01T00:00:00Z", oid="O2", items=[largest]),
            product("underscore", "2026-01-01T00:00:00Z", pid="P2", unit_price="1_000"),
            product("nan", "2026-01-01T00:00:00Z", pid="P3", unit_price="NaN"),
            product("exponent", "2026-01-01T00:00:00Z", pid="P4", unit_price="1e3"),
            product("far", "9999-12-31T23:59:59.999999Z", pid="P5", unit_price=" +.5 "),
            product("early", "0001-01-01T00:00:00Z", pid="P6", unit_price="7."),
        ],
    )
    reasons = {eid: json.loads(r) for eid, r in rows(lakehouse, Quarantine, "event_id", "reasons")}
    assert reasons == {
        "huge": ["items[1].quantity: integer_gt_0"],
        "underscore": ["unit_price: decimal_ge_0_max_6_places"],
        "nan": ["unit_price: decimal_ge_0_max_6_places"],
        "exponent": ["unit_price: decimal_ge_0_max_6_places"],
    }
    assert rows(lakehouse, OrderItem, "order_id", "quantity") == [("O2", 2**31 - 1)]
    stored = rows(lakehouse, Product, "product_id", "unit_price", "updated_at")
    assert [(p, price, at.isoformat()) for p, price, at in stored] == [
        ("P5", Decimal("0.5"), "9999-12-31T23:59:59.999999+00:00"),
        ("P6", Decimal("7"), "0001-01-01T00:00:00+00:00"),
    ]


def test_quarantine_reasons_are_canonical_however_the_events_arrive(tmp_path: Path) -> None:
    """The same events, in one batch or one at a time in another order, store the same reasons:
    sorted, without repeats, so an incremental or rebuilt lakehouse equals a clean one."""
    many_lines = [{"product_id": "P1", "quantity": n, "unit_price": "1"} for n in range(1, 12)]
    many_lines[1] = {"quantity": 0, "discount": 2}  # line 2: every field of an item wrong
    many_lines[9] = "not an object"  # line 10
    lines = [
        event("bad-product", "product.created", "2026-01-01T00:00:00Z", unit_price="-1", name=5),
        placed("many-lines", "2026-01-01T00:00:00Z", oid="O1", items=many_lines),
        placed("no-lines", "2026-01-01T00:00:00Z", oid=None, currency="x", items=[]),
        product("good", "2026-01-01T00:00:00Z"),
    ]
    stored = {}
    for name, order, batch_events in (("together", lines, 100_000), ("apart", lines[::-1], 1)):
        lh = LakehouseResource(duckdb_path=str(tmp_path / f"{name}.duckdb")).get_lakehouse()
        lh.create_tables()
        for number, line in enumerate(order):
            write_events(tmp_path / name / f"{number:02}.ndjson", [line])
            ingest_landing(lh, tmp_path / name)
            if name == "apart":
                apply_new_events(lh, batch_events=batch_events)
        apply_new_events(lh, batch_events=batch_events)
        stored[name] = rows(lh, Quarantine, "event_id", "event_type", "reasons")
    assert stored["together"] == stored["apart"]
    reasons = {eid: json.loads(r) for eid, _, r in stored["together"]}
    assert all(r == sorted(set(r)) for r in reasons.values())
    assert reasons["many-lines"] == [
        "items[10]: object",
        "items[2].discount: decimal_in_0_1_max_6_places",
        "items[2].product_id: not_nullable",
        "items[2].quantity: integer_gt_0",
        "items[2].unit_price: not_nullable",
    ]
    assert reasons["no-lines"] == [
        "currency: three_letters",
        "items: non_empty_list",
        "order_id: not_nullable",
    ]


def test_a_currency_with_a_trailing_newline_is_not_three_letters(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    step(
        lakehouse,
        tmp_path / "landing",
        "a",
        [
            placed("ok", "2026-01-01T00:00:00Z", currency="EUR"),
            placed("nl", "2026-01-01T00:00:01Z", oid="O2", currency="USD\n"),
        ],
    )
    assert rows(lakehouse, Order, "order_id", "currency") == [("O1", "EUR")]
    reasons = dict(rows(lakehouse, Quarantine, "event_id", "reasons"))
    assert json.loads(reasons["nl"]) == ["currency: three_letters"]
