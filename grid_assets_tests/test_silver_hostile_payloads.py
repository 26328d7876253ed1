"""Tier 2: payloads that Bronze keeps but Silver cannot hold are quarantined, never fatal.

Each landing line is written verbatim (the JSON text is the point), ingested by Bronze, and
folded by the real Silver step; the clean events around them, in the same batch and the next,
must still be applied.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.silver import apply_new_events, read_cursor
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.bronze import RejectedEvent
from grid_assets.models.silver import EventLedger, Order, OrderItem, Product, Quarantine
from grid_assets.transform import payload, silver_rows
from grid_assets.transform.silver_rows import SilverEventError
from grid_assets_tests.conftest import write_events

AT = "2026-01-01T00:00:00Z"


def line(event_id: str, event_type: str, payload: str) -> str:
    """An envelope around payload text kept exactly as written."""
    return (
        f'{{"event_id": "{event_id}", "event_type": "{event_type}", "occurred_at": "{AT}", '
        f'"payload": {payload}}}'
    )


def product(event_id: str, pid: str, **fields: str) -> str:
    members = {"product_id": f'"{pid}"', "category": '"tools"', "unit_price": '"10.00"', **fields}
    return line(
        event_id,
        "product.updated",
        "{" + ", ".join(f'"{k}": {v}' for k, v in members.items()) + "}",
    )


def placed(event_id: str, oid: str, extra: str = "") -> str:
    items = '[{"product_id": "P1", "quantity": 2, "unit_price": "5.50"}]'
    return line(event_id, "order.placed", f'{{"order_id": "{oid}", "items": {items}{extra}}}')


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE = [
    product("surrogate-name", "P2", name=r'"\ud800"'),
    product("surrogate-category", "P3", category=r'"tools \uDC00"'),
    product("surrogate-key", "P4", **{r"note \ud83d": "1"}),
    placed("surrogate-line", "O2").replace('"P1"', r'"\udfff"'),
    placed("huge-integer", "O3", extra=', "ref": 1' + "0" * 5000),
    product("price-1e999999999", "P6", unit_price="1e999999999"),
    product("deep", "P7", tags=nested(600)),  # Bronze keeps it; Silver allows 128 levels
    product("nan-name", "P8", name="NaN"),
    line(
        "not-finite-customer",
        "order.placed",
        '{"order_id": "O4", "customer_id": Infinity, '
        '"items": [{"product_id": "P1", "quantity": 1, "unit_price": "1"}]}',
    ),
]
CLEAN = [
    product("emoji", "P9", name=r'"mug \ud83d\ude00"'),
    product("zero-exponent", "P10", unit_price="0e20"),
    product("escaped-backslash", "P11", name=r'"C:\\ud800"'),
    placed("good-order", "O1"),
]
EXPECTED = {
    "surrogate-name": ["payload: invalid_unicode"],
    "surrogate-category": ["payload: invalid_unicode"],
    "surrogate-key": ["payload: invalid_unicode"],
    "surrogate-line": ["payload: invalid_unicode"],
    "huge-integer": ["payload: number_too_large"],
    "price-1e999999999": ["unit_price: decimal_ge_0_max_6_places"],
    "deep": ["payload: nested_too_deeply"],
    "nan-name": ["name: string"],
    "not-finite-customer": ["customer_id: string"],
}


def rows(lh: Lakehouse, model: type, *columns: str) -> list[tuple]:
    table = model.__table__
    with lh.connect() as conn:
        query = select(*(table.c[c] for c in columns)).order_by(*(table.c[c] for c in columns))
        return [tuple(r) for r in conn.execute(query)]


def ingest(lh: Lakehouse, landing: Path, name: str, lines: list[str]) -> None:
    write_events(landing / f"{name}.ndjson", list(lines))
    ingest_landing(lh, landing)
    assert rows(lh, RejectedEvent, "line_number", "reason") == []  # Bronze kept every line


def test_hostile_payloads_are_quarantined_and_the_batch_goes_on(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    ingest(lakehouse, landing, "1", [CLEAN[0], *HOSTILE, *CLEAN[1:]])
    first = apply_new_events(lakehouse)
    assert first.events_read == len(HOSTILE) + len(CLEAN)
    assert first.outcomes == {"quarantined": len(HOSTILE), "applied": len(CLEAN)}

    stored = rows(lakehouse, Quarantine, "event_id", "event_type", "reasons")
    assert {eid: json.loads(reasons) for eid, _, reasons in stored} == EXPECTED
    assert {eid: kind for eid, kind, _ in stored}["surrogate-line"] == "order.placed"
    ledger = dict(rows(lakehouse, EventLedger, "event_id", "outcome"))
    assert ledger == {
        **dict.fromkeys(EXPECTED, "quarantined"),
        **dict.fromkeys(["emoji", "zero-exponent", "escaped-backslash", "good-order"], "applied"),
    }
    # The clean events of the same batch are applied, values exact.
    assert rows(lakehouse, Product, "product_id", "name", "unit_price") == [
        ("P10", None, Decimal("0")),
        ("P11", "C:\\ud800", Decimal("10.00")),
        ("P9", "mug \N{GRINNING FACE}", Decimal("10.00")),
    ]
    assert rows(lakehouse, Order, "order_id", "status") == [("O1", "placed")]
    assert rows(lakehouse, OrderItem, "order_id", "quantity", "unit_price") == [
        ("O1", 2, Decimal("5.50"))
    ]

    # The cursor moved past them: the next batch is read and applied, nothing is redone.
    cursor = first.cursor
    with lakehouse.connect() as conn:
        assert read_cursor(conn) == cursor
    ingest(lakehouse, landing, "2", [product("next", "P12"), placed("next-order", "O5")])
    second = apply_new_events(lakehouse)
    assert second.events_read == 2 and second.outcomes == {"applied": 2}
    assert ("P12",) in rows(lakehouse, Product, "product_id")
    assert rows(lakehouse, Order, "order_id") == [("O1",), ("O5",)]
    assert len(rows(lakehouse, Quarantine, "event_id")) == len(HOSTILE)


@pytest.mark.parametrize("path", ["python", "fast"])
def test_a_defect_of_silver_names_the_event_and_moves_nothing(
    tmp_path: Path, lakehouse: Lakehouse, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Should converting an event fail in a way no rule covers, on either path, the error names
    that event (found in a batch of many) and the batch is written once the defect is gone.

    The Python path reads the trigger because its name is spelled with a surrogate-pair escape
    (the fast path leaves any `\\ud` escape to Python); the fast path reads it otherwise."""
    landing = tmp_path / "landing"
    lines = [product(f"fine-{n}", f"P{n}") for n in range(20)]
    name = r'"mug \ud83d\ude00"' if path == "python" else '"mug"'
    lines.insert(13, product("trigger", "P-boom", name=name))
    ingest(lakehouse, landing, "1", lines)

    if path == "python":
        real, target = silver_rows.decode_payload, "decode_payload"

        def failing(text: str):
            if "P-boom" in text:
                raise KeyError("simulated defect")
            return real(text)

        monkeypatch.setattr(silver_rows, target, failing)
    else:
        real, target = silver_rows.silver_fast.certify, "certify"

        def failing(events: pa.Table):
            if any("P-boom" in text for text in events.column("payload").to_pylist()):
                raise KeyError("simulated defect")
            return real(events)

        monkeypatch.setattr(silver_rows.silver_fast, target, failing)
    with pytest.raises(
        SilverEventError, match=r"event 'trigger' \(product.updated, ingest_seq \d+\)"
    ):
        apply_new_events(lakehouse)
    with lakehouse.connect() as conn:
        assert read_cursor(conn) == 0
    assert rows(lakehouse, EventLedger, "event_id") == []

    monkeypatch.undo()
    assert apply_new_events(lakehouse).outcomes == {"applied": 21}


@pytest.mark.parametrize(
    ("text", "defect"),
    [
        ('{"weight": 1e9999999999999999999}', "payload: number_too_large"),
        ('{"weight": 1e-9999999999999999999}', "payload: number_too_large"),
        ('{"ref": 1' + "0" * 4300 + "}", "payload: number_too_large"),
        ('{"tags": ' + nested(50_000) + "}", "payload: nested_too_deeply"),
        ('{"tags": ' + nested(payload.MAX_PAYLOAD_DEPTH) + "}", "payload: nested_too_deeply"),
        ("[1]", "payload: not_an_object"),
        ('{"a": 1,}', "payload: invalid_json"),
        (r'{"name": "\ud800\ud800"}', "payload: invalid_unicode"),
        (r'{"name": "\ude00\ud83d"}', "payload: invalid_unicode"),  # a pair in the wrong order
    ],
)
def test_payload_defects_are_named(text: str, defect: str) -> None:
    assert payload.decode_payload(text)[1] == defect


@pytest.mark.parametrize(
    "text",
    [
        '{"ref": 1' + "0" * 4299 + "}",
        '{"tags": ' + nested(payload.MAX_PAYLOAD_DEPTH - 1) + "}",
        '{"tags": "' + "[" * 500 + '"}',  # brackets inside a string are not nesting
        r'{"name": "\ud83d\ude00", "path": "C:\\ud800"}',
        '{"items": [' + ", ".join(['{"q": [1]}'] * 300) + "]}",
    ],
)
def test_payloads_within_the_limits_decode(text: str) -> None:
    decoded, defect = payload.decode_payload(text)
    assert defect is None and isinstance(decoded, dict)


def test_money_is_decoded_exactly_and_constants_are_not_numbers() -> None:
    decoded, defect = payload.decode_payload('{"p": 0.1, "q": 3, "n": NaN, "i": -Infinity}')
    assert defect is None and decoded is not None
    assert decoded["p"] == Decimal("0.1") and type(decoded["p"]) is Decimal
    assert type(decoded["q"]) is int
    assert [repr(decoded[k]) for k in ("n", "i")] == ["NaN", "-Infinity"]
