"""Environment selection (contract, section 1), decided by `load_settings` from explicit dicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from grid_assets.config import (
    DEFAULT_DUCKDB_PATH,
    DEFAULT_LANDING_DIR,
    REQUIRED_DATABRICKS_VARS,
    ConfigurationError,
)
from grid_assets.settings import Environment, load_settings, resolve_environment

TOKEN = "dapi" + "0123456789abcdef" * 2
COMPLETE = {
    "DATABRICKS_SERVER_HOSTNAME": "adb-1234567890123456.7.azuredatabricks.net",
    "DATABRICKS_HTTP_PATH": "/sql/1.0/warehouses/0123456789abcdef",
    "DATABRICKS_TOKEN": TOKEN,
    "DATABRICKS_CATALOG": "main",
}


def error_text(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    text = str(caught.value)
    assert TOKEN not in text
    return text


def test_nothing_set_is_local_with_project_defaults() -> None:
    settings = load_settings({})
    assert settings.environment is Environment.LOCAL
    assert settings.is_local
    assert settings.duckdb_path == DEFAULT_DUCKDB_PATH.resolve()
    assert settings.landing_dir == DEFAULT_LANDING_DIR.resolve()


def test_local_paths_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {"GRID_LANDING_DIR": str(tmp_path / "in"), "GRID_DUCKDB_PATH": str(tmp_path / "x.duckdb")}
    )
    assert settings.landing_dir == (tmp_path / "in").resolve()
    assert settings.duckdb_path == (tmp_path / "x.duckdb").resolve()


@pytest.mark.parametrize("value", ["local", " local ", ""])
def test_grid_env_local(value: str) -> None:
    assert load_settings({"GRID_ENV": value}).environment is Environment.LOCAL


def test_explicit_local_wins_over_databricks_variables() -> None:
    settings = load_settings({"GRID_ENV": "local", **COMPLETE})
    assert settings.is_local


@pytest.mark.parametrize("value", ["prod", "Production", "dev", "staging", "1", "local,production"])
def test_any_other_grid_env_is_a_startup_error(value: str) -> None:
    text = error_text({"GRID_ENV": value, **COMPLETE})
    assert "GRID_ENV" in text and "'local' or 'production'" in text


def test_complete_production() -> None:
    settings = load_settings({"GRID_ENV": "production", **COMPLETE})
    assert settings.environment is Environment.PRODUCTION
    assert not settings.is_local
    assert settings.duckdb_path is None
    assert settings.schema_prefix == ""
    assert settings.connect_timeout_s is None
    # Secret values never become part of the settings object.
    assert TOKEN not in repr(settings)


def test_unset_grid_env_with_complete_databricks_config_is_production() -> None:
    assert load_settings(COMPLETE).environment is Environment.PRODUCTION


@pytest.mark.parametrize("name", REQUIRED_DATABRICKS_VARS)
def test_a_single_databricks_variable_makes_it_production(name: str) -> None:
    """A partial configuration is an error naming the others, never a silent local run."""
    environ = {name: COMPLETE[name]}
    assert resolve_environment(environ) is Environment.PRODUCTION
    text = error_text(environ)
    for other in REQUIRED_DATABRICKS_VARS:
        assert (other in text) == (other != name), (other, text)


def test_an_unrelated_databricks_variable_also_counts() -> None:
    assert resolve_environment({"DATABRICKS_SCHEMA_PREFIX": "grid_"}) is Environment.PRODUCTION
    text = error_text({"DATABRICKS_SCHEMA_PREFIX": "grid_"})
    assert all(name in text for name in REQUIRED_DATABRICKS_VARS)


def test_an_empty_databricks_variable_is_set() -> None:
    assert resolve_environment({"DATABRICKS_TOKEN": ""}) is Environment.PRODUCTION
    text = error_text({"DATABRICKS_TOKEN": ""})
    assert all(name in text for name in REQUIRED_DATABRICKS_VARS)


def test_one_message_names_every_missing_or_blank_variable() -> None:
    environ = {
        "GRID_ENV": "production",
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_HTTP_PATH": "   ",
        "DATABRICKS_CATALOG": "",
    }
    text = error_text(environ)
    assert text.count("missing or empty") == 1
    for name in ("DATABRICKS_SERVER_HOSTNAME", "DATABRICKS_HTTP_PATH", "DATABRICKS_CATALOG"):
        assert name in text
    assert "DATABRICKS_TOKEN" not in text
    assert "never falls back to a local database" in text


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_blank_token_is_missing(blank: str) -> None:
    text = error_text({**COMPLETE, "GRID_ENV": "production", "DATABRICKS_TOKEN": blank})
    assert "DATABRICKS_TOKEN" in text


def test_every_problem_is_reported_together_without_values() -> None:
    environ = {
        **COMPLETE,
        "DATABRICKS_SERVER_HOSTNAME": "https://adb-1.azuredatabricks.net/",
        "DATABRICKS_HTTP_PATH": "sql/1.0/warehouses/x",
        "DATABRICKS_CATALOG": "main; DROP",
        "DATABRICKS_SCHEMA_PREFIX": "bad prefix",
        "GRID_DATABRICKS_CONNECT_TIMEOUT_S": "soon",
    }
    text = error_text(environ)
    for name in (
        "DATABRICKS_SERVER_HOSTNAME",
        "DATABRICKS_HTTP_PATH",
        "DATABRICKS_CATALOG",
        "DATABRICKS_SCHEMA_PREFIX",
        "GRID_DATABRICKS_CONNECT_TIMEOUT_S",
    ):
        assert name in text
    assert "main; DROP" not in text and "bad prefix" not in text


@pytest.mark.parametrize(
    "host", ["adb-1.2.azuredatabricks.net", "dbc-a1b2.cloud.databricks.com", "127.0.0.1:8443"]
)
def test_plausible_hostnames(host: str) -> None:
    settings = load_settings({**COMPLETE, "DATABRICKS_SERVER_HOSTNAME": host})
    assert not settings.is_local


def test_prefix_and_connect_timeout() -> None:
    settings = load_settings(
        {
            **COMPLETE,
            "DATABRICKS_SCHEMA_PREFIX": " grid_ ",
            "GRID_DATABRICKS_CONNECT_TIMEOUT_S": "120",
        }
    )
    assert settings.schema_prefix == "grid_"
    assert settings.connect_timeout_s == 120


def test_the_environment_is_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRID_ENV", raising=False)
    assert load_settings().is_local
    monkeypatch.setenv("DATABRICKS_CATALOG", "main")
    with pytest.raises(ConfigurationError):
        load_settings()
    monkeypatch.setenv("GRID_ENV", "local")
    assert load_settings().is_local


@pytest.mark.parametrize("raw", ["²", "٣٠", "9" * 5000, "0", "3601", "1.5"])
def test_a_connect_timeout_that_is_no_number_of_seconds_is_one_clear_error(raw: str) -> None:
    text = error_text({**COMPLETE, "GRID_DATABRICKS_CONNECT_TIMEOUT_S": raw})
    assert "GRID_DATABRICKS_CONNECT_TIMEOUT_S" in text
