"""Silver checks: every Bronze event is accounted for, and no rule-breaking row got in."""

import dagster as dg

from grid_assets.defs.constants import silver_key
from grid_assets.queries import checks as q
from grid_assets.resources.lakehouse import LakehouseResource


@dg.asset_check(
    asset=silver_key("event_ledger"),
    blocking=True,
    description="Reconciliation: every GRID event in Bronze up to Silver's cursor is applied, "
    "quarantined or ignored exactly once, and quarantine matches the ledger.",
)
def events_reconcile(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.get_lakehouse().connect() as conn:
        found = conn.execute(q.reconciliation()).one()._asdict()
        outcomes = {k: int(v) for k, v in conn.execute(q.ledger_outcomes())}
        row = {k: int(found[k]) for k in ("cursor", "bronze_events", "quarantine_rows")}
        row["ledger_rows"] = sum(outcomes.values())
        row["ledger_quarantined"] = outcomes.get("quarantined", 0)
        # Same events by fingerprint and count: none unaccounted, and no join needed to say so.
        same_events = (
            found["bronze_fingerprint"] == found["ledger_fingerprint"]
            and row["bronze_events"] == row["ledger_rows"]
        )
        row["unaccounted"] = (
            0 if same_events else int(conn.execute(q.unaccounted_events()).scalar_one())
        )
    passed = same_events and row["ledger_quarantined"] == row["quarantine_rows"]
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            **row,
            "fingerprints_match": same_events,
            "outcomes": dg.MetadataValue.json(outcomes),
        },
    )


@dg.asset_check(
    asset=silver_key("order_items"),
    blocking=True,
    description="Quality: no Silver row breaks a contract rule (prices >= 0, quantity > 0, "
    "discount in [0, 1), known statuses, every line belongs to its order's placement).",
)
def silver_rules_hold(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.get_lakehouse().connect() as conn:
        violations = {
            name: int(conn.execute(stmt).scalar_one())
            for name, stmt in q.silver_violations().items()
        }
    return dg.AssetCheckResult(passed=not any(violations.values()), metadata=violations)


@dg.asset_check(
    asset=silver_key("order_items"),
    description="Order lines whose product was never seen (they count under category 'unknown').",
)
def lines_with_unknown_product(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.get_lakehouse().connect() as conn:
        count = int(conn.execute(q.unknown_product_lines()).scalar_one())
    return dg.AssetCheckResult(
        passed=count == 0, severity=dg.AssetCheckSeverity.WARN, metadata={"lines": count}
    )


silver_checks = [events_reconcile, silver_rules_hold, lines_with_unknown_product]
