"""Property: Silver and Gold depend only on the set of events, not on arrival order, on how
they are split across files, or across runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.models.base import Base
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import write_events

VOLATILE = {"computed_at", "quarantined_at", "processed_at", "run_id", "ingest_seq"}
COMPARED = [
    t for t in Base.metadata.sorted_tables if t.schema in ("silver", "gold") and t.name != "cursors"
]

hours = st.integers(min_value=0, max_value=72)
products = st.sampled_from(["P1", "P2"])
orders = st.sampled_from(["O1", "O2", "O3"])
money = st.decimals(min_value=0, max_value=500, places=2, allow_nan=False).map(str)


@st.composite
def grid_event(draw: st.DrawFn) -> dict:
    kind = draw(
        st.sampled_from(["product", "product", "placed", "paid", "shipped", "cancelled", "bad"])
    )
    at = f"2026-01-{1 + draw(hours) // 24:02d}T{draw(hours) % 24:02d}:00:00Z"
    if kind == "product":
        payload = {
            "product_id": draw(products),
            "category": draw(st.sampled_from(["a", "b"])),
            "unit_price": draw(money),
        }
        etype = "product.updated"
    elif kind in ("placed", "bad"):
        items = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "product_id": products | st.just("P9"),
                        "quantity": st.integers(
                            min_value=1 if kind == "placed" else 0, max_value=5
                        ),
                        "unit_price": money,
                        "discount": st.sampled_from(["0", "0.1", "0.25", "0.333333"]),
                    }
                ),
                min_size=1,
                max_size=3,
            )
        )
        payload = {"order_id": draw(orders), "items": items}
        etype = "order.placed"
    else:
        payload = {"order_id": draw(orders)}
        etype = f"order.{kind}"
    return {"event_type": etype, "occurred_at": at, "payload": payload}


def snapshot(db: Path, landing_runs: list[list[list[dict]]], batch: int) -> dict:
    """Feed the runs (each a list of files, each a list of events) and read Silver and Gold."""
    lh = LakehouseResource(duckdb_path=str(db)).get_lakehouse()
    lh.create_tables()
    landing = db.parent / f"landing-{db.stem}"
    file_no = 0
    for files in landing_runs:
        for events in files:
            file_no += 1
            write_events(landing / f"{file_no:04d}.ndjson", events)
        ingest_landing(lh, landing, batch_lines=batch)
        apply_new_events(lh, batch_events=batch)
    for name in GOLD_TABLES:  # a full recompute: once after the last run is enough
        rebuild(lh, name)
    out = {}
    with lh.connect() as conn:
        for table in COMPARED:
            cols = [c for c in table.c if c.name not in VOLATILE]
            out[table.fullname] = sorted(tuple(map(str, r)) for r in conn.execute(select(*cols)))
    lh.engine.dispose()
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    events=st.lists(grid_event(), min_size=1, max_size=25),
    data=st.data(),
)
def test_silver_and_gold_ignore_arrival_order_and_splits(
    events: list[dict], data: st.DataObject
) -> None:
    numbered = [{"event_id": f"e{i:03d}", **ev} for i, ev in enumerate(events)]
    shuffled = data.draw(st.permutations(numbered))
    duplicated = shuffled + data.draw(st.lists(st.sampled_from(numbered), max_size=3))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(duplicated)), max_size=4)))
    pieces = [duplicated[a:b] for a, b in zip([0, *cuts], [*cuts, len(duplicated)], strict=True)]
    run_split = data.draw(st.integers(0, len(pieces)))
    with tempfile.TemporaryDirectory() as tmp:
        reference = snapshot(Path(tmp) / "one.duckdb", [[numbered]], batch=1000)
        varied = snapshot(
            Path(tmp) / "many.duckdb", [pieces[:run_split], pieces[run_split:]], batch=3
        )
    assert varied == reference
