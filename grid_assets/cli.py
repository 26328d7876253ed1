"""`grid`: run the whole asset graph once, in-process, and print what it did; simulate input,
check a production configuration, benchmark."""

from __future__ import annotations

import contextlib
import gc
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from sqlalchemy import select

from grid_assets.config import (
    CONNECT_TIMEOUT_VAR,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_LANDING_DIR,
    PROJECT_ROOT,
    ConfigurationError,
)

# Tracebacks are printed by main() with secrets masked; typer's own pretty tracebacks would also
# print every frame's local variables (connection arguments included).
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="GRID lakehouse pipeline.",
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
console = Console()


TEXT_COLUMNS = ("category", "currency", "status", "product_id", "product_name")


def _print_table(lakehouse, table, order_by, columns: list[str], limit: int = 20) -> None:
    with lakehouse.connect() as conn:
        rows = conn.execute(select(table).order_by(*order_by).limit(limit)).all()
        total = lakehouse.count(conn, table)
    shown = columns
    shown_rows = f"first {limit} of {total}" if total > limit else str(total)
    view = RichTable(title=f"{table.schema}.{table.name} ({shown_rows} rows)", title_justify="left")
    for name in shown:
        view.add_column(name, justify="left" if name in TEXT_COLUMNS else "right")
    for row in rows:
        mapping = row._mapping
        view.add_row(*(str(mapping[name]) for name in shown))
    console.print(view)


def _reply(stream: TextIO, summary: dict[str, Any]) -> None:
    stream.write(json.dumps(summary, indent=2) + "\n")
    stream.flush()


@app.command()
def run(
    show_gold: bool = typer.Option(True, help="Print the Gold tables after the run."),
    log_level: str = typer.Option(
        "WARNING", help="Dagster event log level on the console (DEBUG shows every step)."
    ),
    json_output: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON object on stdout: assets and row counts, every check's result, "
        "the run's id and status. Logs and messages go to stderr; no progress, no Gold tables.",
    ),
    full_refresh: bool = typer.Option(
        False,
        "--full-refresh",
        help="Rebuild Silver and Gold from all of Bronze: Silver's cursor is reset and its "
        "tables emptied first, then the run goes on as usual.",
    ),
) -> None:
    """Materialize every asset once (checks included) on GRID_LANDING_DIR; exit 1 on failure.

    Exit status: 0 success, 1 an asset or a blocking check failed, 2 bad configuration,
    3 the production lakehouse is unreachable. On a terminal it shows live progress."""
    if not json_output:
        _run(show_gold, log_level, full_refresh, reply=None)
        return
    reply = sys.stdout
    # stdout carries the one JSON object alone: whatever else is printed meanwhile (by this
    # command, Dagster or a library) goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        _run(False, log_level, full_refresh, reply=reply)


# True under `main()`, the `grid` console script, whose process ends with the command; false when
# `app` runs inside a longer-lived process (tests), whose later collections must see everything.
_process_ends_with_command = False


@contextlib.contextmanager
def _start_up() -> Iterator[None]:
    """Build what lives as long as the process (Dagster's modules, the definitions, the run's
    instance) with Python's cycle collector paused, then hide it from the collector
    (`gc.freeze`). Start-up makes a few hundred thousand objects, none of them
    garbage: collecting while they were imported, and again over all of them once collection
    resumed, cost ~0.5 s of `grid run`'s start-up. Only in the console script's own process:
    frozen objects are never collected."""
    if not _process_ends_with_command:
        yield
        return
    from grid_assets.etl.batching import cyclic_gc_paused

    with cyclic_gc_paused():
        yield
        gc.freeze()  # before the collector resumes


def _run(show_gold: bool, log_level: str, full_refresh: bool, reply: TextIO | None) -> None:
    """`grid run`; with `reply`, the summary goes there as JSON instead of the tables."""
    from grid_assets import run_report
    from grid_assets.logging_redaction import install_redaction
    from grid_assets.settings import load_settings

    install_redaction()
    # Settings first, before the heavy imports below: a misconfigured environment fails in ~1 s.
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        console.print(
            f"[red]Configuration error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        if reply is not None:
            _reply(reply, run_report.not_run("CONFIGURATION_ERROR", str(exc)))
        raise typer.Exit(2) from None

    with _start_up():
        import dagster as dg

        from grid_assets.definitions import build_definitions
        from grid_assets.lakehouse.core import ping
        from grid_assets.lakehouse.databricks import LakehouseConnectionError
        from grid_assets.lakehouse.duckdb import held_open
        from grid_assets.models.gold import DailyRevenue, ProductRevenue, RevenueByCategory
        from grid_assets.run_progress import follow_on_terminal

        defs = build_definitions(settings)
        # The run's throwaway instance (making the first one is the rest of the start-up).
        # It is closed when the block below ends, whatever ends it: `grid run` may run inside
        # a longer-lived process (tests, a notebook), where an instance left to the cycle
        # collector is disposed of in the middle of whatever runs then.
        instance = dg.DagsterInstance.ephemeral()
    with instance:
        # The resource built on it, its EnvVar fields resolved as in a run (the unresolved one
        # holds their names); `process_config_and_initialize` would make an instance of its
        # own and leave it to the collector. The resource has nothing to tear down, so it
        # stays usable once `build_resources` has closed.
        unresolved = {"lakehouse": (defs.resources or {})["lakehouse"]}
        with dg.build_resources(unresolved, instance=instance) as built:
            resource = built.lakehouse
        if not settings.is_local:
            # Reach the warehouse once before starting: an unreachable or misconfigured
            # warehouse is one bounded, masked message (host and HTTP path named), not a
            # failed run.
            try:
                ping(resource.get_lakehouse())
            except (ConfigurationError, LakehouseConnectionError) as exc:
                console.print(
                    f"[red]Lakehouse unreachable:[/red] {escape(str(exc))}",
                    highlight=False,
                    soft_wrap=True,
                )
                if reply is not None:
                    _reply(reply, run_report.not_run("LAKEHOUSE_UNREACHABLE", str(exc)))
                raise typer.Exit(3) from None
        job = defs.resolve_job_def("medallion_job")
        where = settings.duckdb_path if settings.is_local else "Databricks"
        console.print(
            f"GRID run: {settings.environment} lakehouse at {where}; landing {settings.landing_dir}"
        )
        run_config: dict[str, Any] = {
            "loggers": {"console": {"config": {"log_level": log_level.upper()}}},
            "ops": {"silver_apply_events": {"config": {"full_refresh": full_refresh}}},
        }
        run_id = str(uuid.uuid4())
        # Locally the run's steps share one open DuckDB database (`held_open`): opening and
        # closing the file for each of them cost more than the checks themselves.
        local = settings.is_local
        held = held_open(resource.get_lakehouse().engine) if local else contextlib.nullcontext()
        with held, follow_on_terminal(instance, run_id, enabled=reply is None):
            result = job.execute_in_process(
                instance=instance, run_id=run_id, raise_on_error=False, run_config=run_config
            )
        from grid_assets.defs.alerts import send_run_alerts

        # failed checks and runs, once per incident; never raises
        send_run_alerts(instance, defs)
        report = run_report.summarize(result, job, instance)
    if reply is not None:
        _reply(reply, report)
        raise typer.Exit(0 if report["success"] else 1)
    materialized = [
        (str(event.asset_key.to_user_string()), event.materialization.metadata)
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None and event.materialization is not None
    ]
    summary = RichTable(title="Assets", title_justify="left")
    summary.add_column("asset")
    summary.add_column("rows", justify="right")
    for key, metadata in materialized:
        rows = metadata.get("dagster/row_count")
        summary.add_row(key, str(rows.value if rows is not None else ""))
    console.print(summary)

    failed_checks = []
    checks = RichTable(title="Checks", title_justify="left")
    for name in ("check", "severity", "result"):
        checks.add_column(name)
    for evaluation in result.get_asset_check_evaluations():
        ok = evaluation.passed
        label = "passed" if ok else "FAILED"
        checks.add_row(
            f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}",
            evaluation.severity.value,
            label,
        )
        # Only a blocking check fails the run (the same rule as --json's exit status).
        if run_report.is_failed_blocking(evaluation):
            failed_checks.append(evaluation.check_name)
    console.print(checks)

    if result.success and show_gold:
        lakehouse = resource.get_lakehouse()
        # Revenue is shown beside its currency: amounts in different currencies never add up.
        for model, order, columns, limit in (
            (
                RevenueByCategory,
                ["category", "currency"],
                ["category", "currency", "revenue", "order_count", "units"],
                50,
            ),
            (
                DailyRevenue,
                ["order_date", "currency"],
                [
                    "order_date",
                    "currency",
                    "revenue",
                    "order_count",
                    "average_order_value",
                    "units",
                ],
                31,
            ),
            (
                ProductRevenue,
                ["revenue_rank", "currency"],
                ["revenue_rank", "currency", "product_id", "revenue", "units"],
                10,
            ),
        ):
            table = model.__table__
            _print_table(lakehouse, table, [table.c[name] for name in order], columns, limit=limit)
    if not result.success or failed_checks:
        failures = run_report.failed_steps(result)
        checks_text = ", ".join(failed_checks) or "-"
        console.print(
            f"[red]Run failed[/red]: steps {failures or '-'}; blocking checks {checks_text}"
        )
        for step, error in run_report.step_errors(result).items():
            console.print(f"  {step}: {escape(error)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print("[green]Run succeeded.[/green]")


@app.command()
def simulate(
    seed: Annotated[
        int, typer.Option(help="Random seed: the same options write the same bytes.")
    ] = 7,
    events: Annotated[int, typer.Option(help="Non-blank lines to write.")] = 3000,
    files: Annotated[int, typer.Option(help="Files to spread them over.")] = 4,
    out: Annotated[
        Path,
        typer.Option(help="Landing folder to write into (GRID_LANDING_DIR of the run)."),
    ] = DEFAULT_LANDING_DIR,
    bad_share: Annotated[
        float | None,
        typer.Option(help="Share of lines that are bad input (default: the traffic profile's)."),
    ] = None,
    gzip_every: Annotated[int, typer.Option(help="Gzip every n-th file (0: none).")] = 2,
    clean: Annotated[
        bool, typer.Option("--clean", help="Delete the folder's event files first.")
    ] = False,
    run_pipeline: Annotated[
        bool,
        typer.Option("--run/--no-run", help="Run the pipeline locally on the folder afterwards."),
    ] = True,
) -> None:
    """Write deterministic GRID traffic (grid_sim) into a landing folder, then `grid run` on it.

    The traffic includes everything the raw-event contract says the pipeline must survive; the
    pipeline runs in a child process in local mode, so no cloud credentials are needed or read.
    Its probabilities are grid_sim's TrafficProfile."""
    import os
    import subprocess
    import time

    from grid_assets.ingest.landing import list_landing_files
    from grid_sim import generate_traffic

    out = out.resolve()
    if clean:
        for landing_file in list_landing_files(out):
            landing_file.path.unlink()
    started = time.perf_counter()
    try:
        summary = generate_traffic(
            out, events, seed, n_files=files, bad_share=bad_share, gzip_every=gzip_every
        )
    except ValueError as exc:
        typer.echo(f"simulate: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"Generated traffic into {out} (seed {seed}) in {time.perf_counter() - started:.1f} s"
    )
    typer.echo(summary.report())
    # Files from an earlier, larger run would be ingested too and skew every count above.
    stale = [f.name for f in list_landing_files(out) if f.name not in summary.files]
    if stale:
        typer.echo(f"warning: {len(stale)} other event file(s) in {out} (use --clean): {stale[:5]}")
    if not run_pipeline:
        return
    typer.echo("\nRunning the pipeline locally: python -m grid_assets.cli run")
    env = {**os.environ, "GRID_ENV": "local", "GRID_LANDING_DIR": str(out)}
    command = [sys.executable, "-m", "grid_assets.cli", "run"]
    code = subprocess.run(command, env=env, cwd=PROJECT_ROOT, check=False).returncode
    raise typer.Exit(code)


@app.command("check-config")
def check_config(
    timeout: Annotated[
        int | None,
        typer.Option(
            help="Seconds allowed for DNS, the connection and the workspace API "
            f"(default: {CONNECT_TIMEOUT_VAR} or {DEFAULT_CONNECT_TIMEOUT_S})."
        ),
    ] = None,
    statement_timeout: Annotated[
        float, typer.Option(help="Seconds allowed per SQL statement.")
    ] = 120.0,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show library logs (masked).")] = False,
) -> None:
    """Check the production (Databricks) configuration before deploying.

    Reads the pipeline's variables and prints one line per check (PASS, FAIL or SKIP, what was
    found, a hint): each variable, the host resolves and answers, SELECT 1 on the warehouse, its
    state, the catalog, the layer schemas, a scratch table, and the staging volume (exists or can
    be created, and a small file can be uploaded, listed, read and removed). A refusal names the
    missing grant; nothing secret is printed. Exit status: 0 only when every check passes, 1
    otherwise."""
    import os

    from grid_assets.check_config import run_checks

    code = run_checks(
        os.environ, timeout=timeout, statement_timeout=statement_timeout, verbose=verbose
    )
    sys.stdout.flush()
    sys.stderr.flush()
    # Helper threads may still be waiting on an unreachable host; do not wait for them.
    os._exit(code)


@app.command()
def bench(
    events: Annotated[
        list[int] | None,
        typer.Option(
            help="Event counts to run, one or more: --events 10000 100000 "
            "(default: 10000 100000 1000000 3000000)."
        ),
    ] = None,
    more_events: Annotated[
        list[int] | None,
        typer.Argument(
            metavar="N",
            help="Further event counts, as in --events 10000 100000.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated traffic.")] = 1,
    files: Annotated[int, typer.Option(help="Landing files to spread it over.")] = 8,
    workdir: Annotated[
        Path,
        typer.Option(help="Where traffic (cached per size and seed), lakehouses and results go."),
    ] = PROJECT_ROOT / "data" / "bench",
    grid_only: Annotated[
        bool,
        typer.Option(
            "--grid-only",
            help="Run only `grid run` (time, CPU, peak RSS), not the stages or the references.",
        ),
    ] = False,
    repeat: Annotated[
        int,
        typer.Option(
            min=1,
            help="Measure each size this many times (fresh lakehouses each time) and report "
            "medians; the ratio to a reference is the median of each run's own ratio.",
        ),
    ] = 1,
    databricks_statements: Annotated[
        bool,
        typer.Option(
            "--databricks-statements",
            help="Count what the production write path sends to Databricks, offline "
            "(grid_bench.statement_budget), against a recording warehouse and an in-memory "
            "volume (grid_bench.recording).",
        ),
    ] = False,
) -> None:
    """Throughput, CPU time and peak memory of the pipeline against pure-DuckDB-SQL references.

    For each event count: generated traffic (grid_sim, seeded, cached under --workdir), then
    `grid run`, its three units of work and the two SQL references (grid_bench's reference.sql
    and reference_core.sql), each in a fresh child process on a fresh DuckDB file; one table row
    per count, then the whole table, also written to --workdir. The benchmark (grid_bench) lives
    beside the product and is loaded only by this command."""
    sizes = [*(events or []), *(more_events or [])] or [10_000, 100_000, 1_000_000, 3_000_000]
    if databricks_statements:
        from grid_bench.statement_budget import run as run_budget

        run_budget(sizes, seed, files, workdir)
        return
    from grid_bench.throughput import run as run_bench

    run_bench(sizes, seed, files, workdir, grid_only, repeat)


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as pkg_version

    console.print(pkg_version("grid-lakehouse"))


def main() -> None:
    global _process_ends_with_command
    _process_ends_with_command = True
    try:
        app()
    except Exception as exc:
        # Last resort: the traceback, with every secret masked, on stderr; exit status 1.
        from grid_assets.logging_redaction import format_exception_redacted

        sys.stderr.write(format_exception_redacted(exc))
        sys.exit(1)
    finally:
        # The process ends here and its objects with it. Frozen, they are left out of the
        # collections the interpreter makes while it shuts down: ~0.9 s after each `grid run`,
        # ~0.1 s frozen. Whatever is open is still closed (reference counting, atexit).
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
