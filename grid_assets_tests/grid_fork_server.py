"""A fork server for `grid run`: the pipeline is imported once, each run is a forked child.

Starting `grid run` costs several seconds of imports (Dagster, pandas, pandera, pyarrow) before
the first statement; a test that needs a hundred runs cannot pay that each time. This server,
started with `python -m grid_assets_tests.grid_fork_server` (from the repository root, with the
test hooks' `sitecustomize` on PYTHONPATH), imports what `grid run` imports and then, for each
request, forks a child that runs `grid_assets.cli.main()` exactly as the `grid` console script
does: its own process, its own environment, argv and output file, its own exit status.

Protocol, one JSON object per line:
  stdin:  {"id": <int>, "env": {...}, "args": ["run", ...], "log": "<path>"}
  stdout: {"event": "ready", "threads": <n>} once the imports are done, then per request
          {"event": "started", "id", "pid"} and {"event": "exited", "id", "pid", "code"}
          (`code` as subprocess reports it: negative for a signal).
The server is single-threaded (forking a threaded process is unsafe); it exits when stdin closes
and its children have ended.
"""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import traceback


def _reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(request: dict) -> None:
    """In the forked child: become `grid <args>` and never return."""
    code = 70
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["grid", *request["args"]]
        from grid_assets.cli import main

        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    # What `grid run` imports, up front (the CLI imports most of it lazily).
    import dagster  # noqa: F401

    import grid_assets.cli
    import grid_assets.definitions
    import grid_assets.etl.bronze
    import grid_assets.etl.silver
    import grid_assets.models.gold
    import grid_assets.resources.lakehouse  # noqa: F401

    _reply({"event": "ready", "threads": threading.active_count()})
    stdin = sys.stdin.fileno()
    pending = b""
    children: dict[int, int] = {}
    open_input = True
    while open_input or children:
        readable, _, _ = select.select([stdin] if open_input else [], [], [], 0.02)
        if readable:
            data = os.read(stdin, 65536)
            open_input = bool(data)
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children[pid] = request["id"]
                _reply({"event": "started", "id": request["id"], "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            _reply({"event": "exited", "id": children.pop(pid), "pid": pid, "code": code})


if __name__ == "__main__":
    serve()
