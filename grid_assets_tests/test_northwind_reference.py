"""The Northwind reference figures and the Northwind-to-events converter, without the pipeline.

Gold is judged against these, so they are pinned to the published figures and the events are
checked against the raw-event contract before any pipeline sees them.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from grid_assets_tests.northwind import (
    PUBLISHED,
    find_northwind_dir,
    missing_northwind_message,
    reference_figures,
    running_in_ci,
    write_northwind_events,
)

OFFSET_SUFFIX = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
MONEY_TEXT = re.compile(r"^\d+(\.\d{1,6})?$")
ORDER_STATUS_EVENTS = {"order.paid", "order.shipped", "order.cancelled"}


@pytest.fixture(scope="module")
def northwind_dir() -> Path:
    found = find_northwind_dir()
    if found is None:
        # CI must prove the Gold figures; a quiet skip there would hide a broken checkout.
        if running_in_ci():
            pytest.fail(missing_northwind_message())
        pytest.skip(missing_northwind_message())
    return found


@pytest.fixture(scope="module")
def reference(northwind_dir: Path) -> dict[str, Any]:
    return reference_figures(northwind_dir)


@pytest.fixture(scope="module")
def landing(northwind_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("northwind-landing")
    write_northwind_events(northwind_dir, folder)
    return folder


def _reject_float(text: str) -> Any:
    raise AssertionError(f"JSON number with a fraction would be read as a float: {text}")


def read_lines(folder: Path) -> list[tuple[str, int, str]]:
    """(file, line number, text) of every line, in file-name order, like Bronze reads them."""
    lines = []
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        # NDJSON lines end at '\n' only; splitlines() would also break on U+2028 and friends.
        texts = data.decode("utf-8").split("\n")
        assert texts[-1] == "", f"{path.name} does not end with a newline"
        lines.extend((path.name, number, text) for number, text in enumerate(texts[:-1], 1))
    return lines


def read_events(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(text, parse_float=_reject_float) for _, _, text in read_lines(folder)]


def test_reference_matches_published_totals(reference: dict[str, Any]) -> None:
    assert reference["total_revenue"] == PUBLISHED["total_revenue"]
    assert reference["order_count"] == PUBLISHED["order_count"] == 830
    assert reference["average_order_value"] == PUBLISHED["average_order_value"]
    assert reference["line_count"] == 2155


def test_reference_matches_published_categories(reference: dict[str, Any]) -> None:
    computed = {name: row["revenue"] for name, row in reference["by_category"].items()}
    assert computed == PUBLISHED["revenue_by_category"]
    assert all(isinstance(value, Decimal) for value in computed.values())


def test_confections_is_a_half_cent_rounded_up(reference: dict[str, Any]) -> None:
    # The one published figure that tells half-up from banker's rounding (which gives .22).
    confections = reference["by_category"]["Confections"]
    assert confections["revenue_exact"] == Decimal("167357.225")
    assert confections["revenue"] == Decimal("167357.23")


def test_reference_breakdowns_add_up(reference: dict[str, Any]) -> None:
    by_category = reference["by_category"].values()
    by_date = reference["by_date"].values()
    assert sum(row["revenue_exact"] for row in by_category) == reference["total_revenue_exact"]
    assert sum(row["revenue_exact"] for row in by_date) == reference["total_revenue_exact"]
    assert sum(row["units"] for row in by_category) == reference["units"]
    assert sum(row["order_count"] for row in by_date) == 830
    # An order spans several categories, so category counts overlap; dates do not.
    assert sum(row["order_count"] for row in by_category) > 830


def test_converter_writes_every_product_order_and_line(northwind_dir: Path, tmp_path: Path) -> None:
    written = write_northwind_events(northwind_dir, tmp_path)
    events = read_events(tmp_path)
    assert written == len(events)
    types = Counter(event["event_type"] for event in events)
    assert types == {"product.created": 77, "order.placed": 830, "order.shipped": 809}
    placed = [event for event in events if event["event_type"] == "order.placed"]
    assert sum(len(event["payload"]["items"]) for event in placed) == 2155
    assert len({event["event_id"] for event in events}) == len(events)


def test_files_cover_plain_and_gzipped(landing: Path) -> None:
    names = sorted(path.name for path in landing.iterdir())
    assert len(names) == 3
    gzipped = [name for name in names if name.endswith(".gz")]
    assert gzipped, "no gzipped file: the gzip path of Bronze would go untested"
    assert all((landing / name).read_bytes()[:2] == b"\x1f\x8b" for name in gzipped)
    assert any(not name.endswith(".gz") for name in names)


def _check_text(value: Any) -> None:
    assert isinstance(value, str), value
    assert value


def _check_envelope(event: Any) -> None:
    assert isinstance(event, dict)
    _check_text(event["event_id"])
    _check_text(event["source"])
    occurred_at = event["occurred_at"]
    _check_text(occurred_at)
    assert OFFSET_SUFFIX.search(occurred_at), occurred_at
    assert datetime.fromisoformat(occurred_at).utcoffset() is not None
    assert isinstance(event["payload"], dict)


def _check_money(value: Any, *, below_one: bool = False) -> None:
    _check_text(value)
    assert MONEY_TEXT.match(value), value
    if below_one:
        assert Decimal(value) < 1, value


def _check_payload(event_type: str, payload: dict[str, Any]) -> None:
    if event_type == "product.created":
        _check_text(payload["product_id"])
        _check_text(payload["name"])
        _check_text(payload["category"])
        assert isinstance(payload["active"], bool)
        _check_money(payload["unit_price"])
    elif event_type == "order.placed":
        _check_text(payload["order_id"])
        _check_text(payload["customer_id"])
        assert payload["items"]
        for item in payload["items"]:
            _check_text(item["product_id"])
            quantity = item["quantity"]
            assert type(quantity) is int, quantity
            assert quantity > 0
            _check_money(item["unit_price"])
            _check_money(item["discount"], below_one=True)
    else:
        assert event_type in ORDER_STATUS_EVENTS, event_type
        _check_text(payload["order_id"])


def test_every_line_is_a_valid_envelope(landing: Path) -> None:
    lines = read_lines(landing)
    assert lines
    for name, number, text in lines:
        # parse_float raises, so money written as a JSON float fails here, not only by type.
        event = json.loads(text, parse_float=_reject_float)
        try:
            _check_envelope(event)
            _check_payload(event["event_type"], event["payload"])
        except (AssertionError, KeyError) as error:
            raise AssertionError(f"{name}:{number}: {error!r}: {text}") from error


def test_money_is_written_as_csv_text(landing: Path) -> None:
    events = read_events(landing)
    prices = {
        event["payload"]["product_id"]: event["payload"]["unit_price"]
        for event in events
        if event["event_type"] == "product.created"
    }
    # Northwind keeps cents ('18.00'); a float round trip would have dropped the trailing zeros.
    assert prices["1"] == "18.00"
    discounts = {
        item["discount"]
        for event in events
        if event["event_type"] == "order.placed"
        for item in event["payload"]["items"]
    }
    assert {"0", "0.05", "0.15"} <= discounts


def test_events_reproduce_the_reference_total(landing: Path, reference: dict[str, Any]) -> None:
    # Ties the converter to the independent reference, so a Gold mismatch points at the pipeline.
    total = Decimal(0)
    for event in read_events(landing):
        if event["event_type"] == "order.placed":
            for item in event["payload"]["items"]:
                price, discount = Decimal(item["unit_price"]), Decimal(item["discount"])
                total += item["quantity"] * price * (1 - discount)
    assert total == reference["total_revenue_exact"]


def test_products_exist_before_the_first_order(landing: Path) -> None:
    events = read_events(landing)
    first_order = min(e["occurred_at"] for e in events if e["event_type"] == "order.placed")
    products = [e for e in events if e["event_type"] == "product.created"]
    assert first_order == "1996-07-04T00:00:00Z"
    assert products and all(e["occurred_at"] < first_order for e in products)


def test_rerunning_the_converter_is_byte_identical(
    northwind_dir: Path, landing: Path, tmp_path: Path
) -> None:
    write_northwind_events(northwind_dir, tmp_path)
    first = {path.name: path.read_bytes() for path in landing.iterdir()}
    second = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert first == second


def test_file_count_only_changes_the_split(
    northwind_dir: Path, landing: Path, tmp_path: Path
) -> None:
    write_northwind_events(northwind_dir, tmp_path, n_files=5)
    assert len(list(tmp_path.iterdir())) == 5
    assert [text for *_, text in read_lines(tmp_path)] == [text for *_, text in read_lines(landing)]
