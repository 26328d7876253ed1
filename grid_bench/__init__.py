"""The performance benchmark, beside the product: `grid bench` (or `python scripts/bench.py`).

    grid bench --events 10000 100000 1000000 3000000
    grid bench --events 6000000 --grid-only                # `grid run` alone: time, CPU, peak RSS
    grid bench --databricks-statements --events 100000     # statements, files, bytes

`throughput`: `grid run`, its units of work and two pure-DuckDB-SQL references (reference.sql,
reference_core.sql) on generated traffic, each in its own child process: wall time, CPU time and
peak RSS.
`statement_budget`: what the production write path sends to Databricks for the same traffic,
offline, against the tests' recording warehouse. The traffic is grid_sim's, seeded and cached.
"""
