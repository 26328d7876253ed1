"""End to end, as a person meets it: the Dagster UI under `dagster dev -w workspace.yaml` (started
the way the README starts it, on a copy of the samples) in a real headless Chromium.

Three times in a row: open the asset graph, click *Materialize all*, follow the run to *Success*,
and see every Gold asset materialized and its checks passed. The third time a second run
(`medallion_job`) is launched through the GraphQL API while the first is running: it must queue
or succeed, never fail on the DuckDB file lock. Screenshots are saved in the test's tmp folder.

Needs Debian's `chromium` (/usr/bin/chromium) driven by the `playwright` package: no browser is
downloaded. Without them the test is skipped on a workstation and fails under CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grid_assets.models.gold import RevenueByCategory
from grid_assets_tests.conftest import REPO_ROOT, SAMPLES_DIR

pytestmark = pytest.mark.ui

CHROMIUM = Path("/usr/bin/chromium")
# Offline, Chromium's background services would only make refused connections.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
LOCATION = "grid_assets"  # workspace.yaml's location_name
GOLD = ("daily_revenue", "order_status_counts", "product_revenue", "revenue_by_category")
GOLD_CHECKS = {
    "daily_revenue": {"daily_revenue_reconciles"},
    "revenue_by_category": {"category_revenue_reconciles"},
}
START_TIMEOUT_S = 120
RUN_TIMEOUT_S = 240
# A page, a status or a launch; generous because the machine (2 cores) may be busy.
UI_TIMEOUT_MS = 120_000


def _require_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install -c constraints.txt -e '.[dev]')")
    if missing:
        message = "the UI test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() not in {"", "0", "false"}:
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _default_signals() -> None:
    # A process started from a non-interactive shell with `&` inherits SIGINT/SIGTERM ignored,
    # and `dagster dev` would then never stop: give it the default handlers back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class DagsterDev:
    """`dagster dev -w workspace.yaml` on its own copy of the samples, DuckDB file and
    DAGSTER_HOME, on a free port of 127.0.0.1; stopped by its PID."""

    def __init__(self, root: Path) -> None:
        landing = shutil.copytree(SAMPLES_DIR, root / "landing")
        home = shutil.copytree(REPO_ROOT / ".dagster_home", root / "dagster_home")
        self.port = _free_port()
        self.log_path = root / "dagster-dev.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
        env |= {
            "GRID_ENV": "local",
            "GRID_LANDING_DIR": str(landing),
            "GRID_DUCKDB_PATH": str(root / "lakehouse.duckdb"),
            "DAGSTER_HOME": str(home),
        }
        command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml"]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "-h", "127.0.0.1", "-p", str(self.port)],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_default_signals,
                start_new_session=True,  # its own process group: nothing of it outlives the test
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            self.url("/graphql"), data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer
        return answer["data"]

    def wait_until_loaded(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                entries = self.graphql(WORKSPACE)["workspaceOrError"]["locationEntries"]
            except OSError:
                entries = []
            if [(e["name"], e["loadStatus"]) for e in entries] == [(LOCATION, "LOADED")]:
                error = entries[0]["locationOrLoadError"]
                assert error["__typename"] == "RepositoryLocation", error
                return
            time.sleep(1)
        pytest.fail(
            f"dagster dev not serving {LOCATION} after {START_TIMEOUT_S} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # Its webserver, daemon and code servers are in its process group; should one have
        # been left behind, it goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


WORKSPACE = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { runId status jobName } } }
"""
RUN_EVENTS = """
query ($runId: ID!) {
  logsForRun(runId: $runId) { ... on EventConnection { hasMore events {
    __typename
    ... on MessageEvent { message }
    ... on MaterializationEvent { assetKey { path } }
    ... on AssetCheckEvaluationEvent { evaluation { checkName success assetKey { path } } }
  } } }
}
"""
GOLD_STATE = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode {
    assetMaterializations(limit: 1) { runId }
    assetChecksOrError { ... on AssetChecks { checks {
      name executionForLatestMaterialization { runId status } } } }
  } }
}
"""


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[DagsterDev]:
    _require_browser()
    server = DagsterDev(tmp_path)
    try:
        server.wait_until_loaded()
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(dagster_dev: DagsterDev, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


class Screens:
    """Numbered screenshots in the test's tmp folder, in the order they were taken."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir()
        self.taken: list[Path] = []

    def __call__(self, page, name: str) -> None:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path))
        self.taken.append(path)


def materialize_all(page, server: DagsterDev, shot: Screens, cycle: int) -> str:
    """Open the asset graph, click Materialize all; returns the run id the UI announces."""
    from playwright.sync_api import expect

    page.goto(server.url("/asset-groups"))
    button = page.get_by_role("button", name="Materialize all")
    expect(button).to_be_enabled()
    # As a person would: wait for the graph to show where each group stands.
    expect(page.get_by_text("(fetching statuses)")).to_have_count(0)
    shot(page, f"cycle{cycle}-asset-graph")
    button.click()
    view = page.locator("a[href^='/runs/']", has_text="View").first
    expect(view).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Launched run "))).to_be_visible()
    shot(page, f"cycle{cycle}-launched")
    href = view.get_attribute("href")
    assert href
    return href.rsplit("/", 1)[-1]


def follow_run_to_success(page, server: DagsterDev, run_id: str, shot: Screens, label: str):
    """The run's page, until its status tag reads Success (or the run ends otherwise)."""
    from playwright.sync_api import expect

    page.goto(server.url(f"/runs/{run_id}"))
    ended = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$"))
    expect(ended.first).to_be_visible(timeout=RUN_TIMEOUT_S * 1000)
    expect(page.get_by_text("Loading run logs")).to_have_count(0)
    shot(page, f"{label}-run")
    status = ended.first.inner_text()
    assert status == "Success", f"run {run_id}: {status}\n{server.log_tail()}"


def run_events(server: DagsterDev, run_id: str) -> list[dict[str, Any]]:
    connection = server.graphql(RUN_EVENTS, runId=run_id)["logsForRun"]
    assert not connection["hasMore"], run_id
    return connection["events"]


def assert_run_built_gold(server: DagsterDev, run_id: str) -> None:
    """The run materialized every Gold asset, and every Gold check it evaluated passed."""
    events = run_events(server, run_id)
    gold = {
        e["assetKey"]["path"][1]
        for e in events
        if e["__typename"] == "MaterializationEvent" and e["assetKey"]["path"][0] == "gold"
    }
    checks = {
        (e["evaluation"]["assetKey"]["path"][1], e["evaluation"]["checkName"]): e["evaluation"][
            "success"
        ]
        for e in events
        if e["__typename"] == "AssetCheckEvaluationEvent"
        and e["evaluation"]["assetKey"]["path"][0] == "gold"
    }
    assert gold == set(GOLD), (run_id, gold)
    expected = {(asset, check) for asset, names in GOLD_CHECKS.items() for check in names}
    assert checks == dict.fromkeys(expected, True), (run_id, checks)


def latest_gold(server: DagsterDev, name: str) -> tuple[str | None, dict[str, tuple[str, str]]]:
    node = server.graphql(GOLD_STATE, key={"path": ["gold", name]})["assetNodeOrError"]
    [latest] = node["assetMaterializations"] or [{"runId": None}]
    checks = {}
    for check in node["assetChecksOrError"]["checks"]:
        execution = check["executionForLatestMaterialization"] or {}
        checks[check["name"]] = (execution.get("runId"), execution.get("status"))
    return latest["runId"], checks


def see_gold_passed(page, server: DagsterDev, run_id: str, shot: Screens, label: str) -> None:
    """The Gold graph shows each Gold asset materialized and its checks passed, and what it
    shows is the latest run's: every Gold asset's latest materialization and check come from
    `run_id`."""
    from playwright.sync_api import expect

    for name in GOLD:
        latest, checks = latest_gold(server, name)
        assert latest == run_id, (name, latest)
        assert checks == {c: (run_id, "SUCCEEDED") for c in GOLD_CHECKS.get(name, ())}, name
    page.goto(server.url(f"/locations/__repository__@{LOCATION}/asset-groups/gold/lineage"))
    for name in GOLD:
        node = (
            page.locator("div")
            .filter(has=page.get_by_text(name, exact=True))
            .filter(has_text="Asset checks")
            .last
        )
        expect(node).to_contain_text("Materialized")
        if name in GOLD_CHECKS:
            count = len(GOLD_CHECKS[name])
            expect(node).to_contain_text(f"{count} / {count} Passed")
        else:
            expect(node).not_to_contain_text("Passed")
    shot(page, f"{label}-gold-graph")


def launch_medallion_job(server: DagsterDev) -> str:
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": "__repository__",
        "jobName": "medallion_job",
    }
    result = server.graphql(LAUNCH_RUN, params={"selector": selector, "runConfigData": {}})
    launched = result["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def run_status(server: DagsterDev, run_id: str) -> str:
    return server.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]


def test_materialize_all_three_times_in_the_ui(
    dagster_dev: DagsterDev, page, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shot = Screens(tmp_path / "screenshots")
    for cycle in (1, 2, 3):
        run_id = materialize_all(page, dagster_dev, shot, cycle)
        latest = run_id
        if cycle == 3:
            # While the first run is running, a second one through the API.
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while (status := run_status(dagster_dev, run_id)) != "STARTED":
                assert status in {"QUEUED", "NOT_STARTED", "STARTING"}, status
                assert time.monotonic() < deadline, status
                time.sleep(0.5)
            latest = launch_medallion_job(dagster_dev)
            seen = {run_status(dagster_dev, latest)}
        follow_run_to_success(page, dagster_dev, run_id, shot, f"cycle{cycle}")
        assert_run_built_gold(dagster_dev, run_id)
        if latest != run_id:
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while (status := run_status(dagster_dev, latest)) not in {
                "SUCCESS",
                "FAILURE",
                "CANCELED",
            }:
                seen.add(status)
                assert time.monotonic() < deadline, seen
                time.sleep(1)
            failures = [
                e.get("message")
                for e in run_events(dagster_dev, latest)
                if e["__typename"] in {"ExecutionStepFailureEvent", "RunFailureEvent"}
            ]
            assert status == "SUCCESS" and not failures, (seen, failures)
            # It waited its turn (queued, or started and waited for the writer pool).
            assert seen <= {"QUEUED", "NOT_STARTED", "STARTING", "STARTED"}, seen
            follow_run_to_success(page, dagster_dev, latest, shot, f"cycle{cycle}-second")
            assert_run_built_gold(dagster_dev, latest)
        see_gold_passed(page, dagster_dev, latest, shot, f"cycle{cycle}")

    # What the UI says about a Gold table: owner, kinds, and every column described.
    page.goto(dagster_dev.url("/assets/gold/revenue_by_category"))
    for column in RevenueByCategory.__table__.columns:
        expect(page.get_by_text(str(column.comment), exact=True)).to_be_visible()
    expect(page.get_by_text("data-platform", exact=True)).to_be_visible()
    expect(page.get_by_text("layer: gold", exact=True)).to_be_visible()
    shot(page, "gold-asset-overview")
    assert len(shot.taken) == 3 * 4 + 1 + 1
