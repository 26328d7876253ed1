"""Test hooks for `grid run` subprocesses, installed as `sitecustomize.py`.

`test_crash_recovery` copies this file, renamed `sitecustomize.py`, into a temporary directory
that it puts first on the subprocess's PYTHONPATH; Python imports it at start-up, before `grid`
runs. It changes nothing in the product's code, only what a process of it does:

- smaller batches: the defaults of `batch_lines` (`grid_assets.etl.bronze.ingest_landing`) and
  `batch_events` (`grid_assets.etl.silver.apply_new_events`) are set from
  `GRID_TEST_BATCH_LINES` and `GRID_TEST_BATCH_EVENTS`, wherever the parameter sits in the
  signature (and the module's `BATCH_LINES` / `BATCH_EVENTS` constants too, if present). What
  was patched is written to `GRID_TEST_HOOK_STATUS` as JSON.
- a crash at a commit: a listener on every SQLAlchemy `Engine` counts the process's commits to
  the lakehouse (DuckDB engines; Dagster's own SQLite storage is not counted) and,
  at commit number `GRID_TEST_CRASH_AT`, either kills the process with SIGKILL before the commit
  reaches the database (`GRID_TEST_CRASH_MODE=kill`, a `kill -9` at that commit boundary) or
  fails that commit with `OSError(ENOSPC)` as a full disk would (`fault`: the transaction is
  rolled back and the error raised to the product's code, which carries on as it would).
- `GRID_TEST_COMMIT_COUNT_FILE`: the number of commits so far is written there after each one.

The environment is read at each commit, not at import, so a process forked from one that
imported this module can be given its own settings.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import os
import signal
import threading

MODE = "GRID_TEST_CRASH_MODE"
CRASH_AT = "GRID_TEST_CRASH_AT"
COUNT_FILE = "GRID_TEST_COMMIT_COUNT_FILE"
BATCH_LINES = "GRID_TEST_BATCH_LINES"
BATCH_EVENTS = "GRID_TEST_BATCH_EVENTS"
STATUS_FILE = "GRID_TEST_HOOK_STATUS"

_commits = 0
_lock = threading.Lock()


def set_default(func, name: str, value) -> bool:
    """Make `value` the default of `func`'s parameter `name`; False if there is no such default."""
    func = inspect.unwrap(func)
    parameters = inspect.signature(func, follow_wrapped=False).parameters
    param = parameters.get(name)
    if param is None or param.default is inspect.Parameter.empty:
        return False
    if param.kind is inspect.Parameter.KEYWORD_ONLY:
        func.__kwdefaults__ = {**(func.__kwdefaults__ or {}), name: value}
        return True
    positional = [
        p.name
        for p in parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    defaults = list(func.__defaults__ or ())
    # __defaults__ holds the defaults of the last len(defaults) positional parameters.
    index = positional.index(name) - (len(positional) - len(defaults))
    defaults[index] = value
    func.__defaults__ = tuple(defaults)
    return True


def _patch_batches() -> dict[str, object]:
    status: dict[str, object] = {}
    targets = (
        (BATCH_LINES, "grid_assets.etl.bronze", "ingest_landing", "batch_lines", "BATCH_LINES"),
        (
            BATCH_EVENTS,
            "grid_assets.etl.silver",
            "apply_new_events",
            "batch_events",
            "BATCH_EVENTS",
        ),
    )
    for variable, module_name, func_name, param, constant in targets:
        if not os.environ.get(variable):
            continue
        value = int(os.environ[variable])
        try:
            module = __import__(module_name, fromlist=[func_name])
            patched = set_default(getattr(module, func_name), param, value)
            if isinstance(getattr(module, constant, None), int):
                setattr(module, constant, value)
        except Exception as exc:  # reported to the test through the status file
            status[param] = f"error: {type(exc).__name__}: {exc}"
            continue
        status[param] = value if patched else "parameter not found"
    return status


def _on_commit(conn) -> None:
    if conn.engine.dialect.name != "duckdb":
        return  # Dagster's own storage (SQLite): not the lakehouse
    global _commits
    with _lock:
        _commits += 1
        number = _commits
    count_file = os.environ.get(COUNT_FILE)
    if count_file:
        with open(count_file, "w") as handle:
            handle.write(str(number))
    mode = os.environ.get(MODE)
    if not mode or number != int(os.environ.get(CRASH_AT, "0")):
        return
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "fault":
        # The commit never lands: what the transaction wrote is gone.
        with contextlib.suppress(Exception):
            conn.connection.dbapi_connection.rollback()
        raise OSError(errno.ENOSPC, "No space left on device")


def install() -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    status = _patch_batches()
    event.listen(Engine, "commit", _on_commit)
    status["commit_hook"] = True
    status_file = os.environ.get(STATUS_FILE)
    if status_file:
        with open(status_file, "w") as handle:
            json.dump(status, handle)


if os.environ.get(STATUS_FILE) or os.environ.get(MODE):
    install()
