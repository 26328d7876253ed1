"""What the production-path tests share: a fake token, local addresses that never reach a
warehouse, a production resource, and the no-op part of a fake PEP 249 connection."""

from __future__ import annotations

import os
import secrets
import socket

from grid_assets.config import DatabricksConfig
from grid_assets.resources.lakehouse import LakehouseResource

# Shaped like a real personal access token, random per test session, so a leak is unmistakable.
TOKEN = "dapi" + secrets.token_hex(16)
HTTP_PATH = "/sql/1.0/warehouses/0123456789abcdef"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any lakehouse, Dagster or proxy setting, plus `values`."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABRICKS_", "GRID_", "DAGSTER_"))
        and "PROXY" not in k.upper()
        and k != "PYTEST_CURRENT_TEST"
    }
    return {**base, "COLUMNS": "200", **values}


def warehouse_config(host: str, token: str = TOKEN, timeout: int = 5) -> DatabricksConfig:
    """A checked production configuration for `host` (engines are built from one)."""
    return DatabricksConfig(
        server_hostname=host,
        http_path=HTTP_PATH,
        access_token=token,
        catalog="main",
        connect_timeout_s=timeout,
    )


def production_resource(host: str, token: str = TOKEN, timeout: int = 5) -> LakehouseResource:
    return LakehouseResource(
        environment="production",
        server_hostname=host,
        http_path=HTTP_PATH,
        access_token=token,
        catalog="main",
        connect_timeout_seconds=timeout,
    )


class FakeConnection:
    """The transaction and close calls of a PEP 249 connection, all no-ops (Databricks has no
    transactions); subclasses say what `cursor()` returns."""

    def cursor(self):
        raise NotImplementedError

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass
