"""Every rule about configuration, in one typed model: names, patterns, sizes, bounds.

Each environment variable is one field of a pydantic model, named by its alias, with its rule as
an annotated type (`Hostname`, `HttpPath`, `MemoryLimit`, ...). The settings loader reads the
environment into these models, the Dagster resources validate their fields with the same types,
the engines take the validated models, and `grid check-config` checks each variable against its
field. A rule lives here once.

Messages name the variable and never echo a secret: `problems` builds them from pydantic's
error list without its `input` (secrets are `SecretStr` besides).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LANDING_DIR = PROJECT_ROOT / "data" / "landing"
DEFAULT_DUCKDB_PATH = PROJECT_ROOT / "data" / "lakehouse" / "grid.duckdb"

# -- the variables --------------------------------------------------------------------------
ENV_VAR = "GRID_ENV"
LANDING_DIR_VAR = "GRID_LANDING_DIR"
DUCKDB_PATH_VAR = "GRID_DUCKDB_PATH"
HOSTNAME_VAR = "DATABRICKS_SERVER_HOSTNAME"
HTTP_PATH_VAR = "DATABRICKS_HTTP_PATH"
TOKEN_VAR = "DATABRICKS_TOKEN"
CATALOG_VAR = "DATABRICKS_CATALOG"
REQUIRED_DATABRICKS_VARS = (HOSTNAME_VAR, HTTP_PATH_VAR, TOKEN_VAR, CATALOG_VAR)
SCHEMA_PREFIX_VAR = "DATABRICKS_SCHEMA_PREFIX"
# Optional: seconds allowed to open a warehouse connection, every retry included.
CONNECT_TIMEOUT_VAR = "GRID_DATABRICKS_CONNECT_TIMEOUT_S"
DEFAULT_CONNECT_TIMEOUT_S = 30
MAX_CONNECT_TIMEOUT_S = 3600
# Production, optional: the Unity Catalog volume bulk writes travel through as Parquet files
# (README, Production). Unset, it is derived: the volume `grid_staging` in the Bronze schema,
# which the pipeline creates with its schemas. Set, it must name an existing volume exactly.
STAGING_VOLUME_VAR = "DATABRICKS_STAGING_VOLUME"
DERIVED_STAGING_VOLUME = "grid_staging"
# Optional, local mode: the most memory DuckDB's buffer manager may hold (its `memory_limit`).
# Beyond it, cached table blocks are evicted and large intermediates spill to `<file>.tmp/`, so
# the process's memory stays flat however large the lakehouse grows (see README, Performance).
DUCKDB_MEMORY_LIMIT_VAR = "GRID_DUCKDB_MEMORY_LIMIT"
DEFAULT_DUCKDB_MEMORY_LIMIT = "256MB"
MIN_DUCKDB_MEMORY_BYTES = 64 * 2**20
# Optional, local mode: how long a connection waits for DuckDB's file lock while another process
# (a run, `dagster dev`, a sensor) holds it. The default outlasts the longest single unit of
# work measured (Bronze at 3x10^6 events, about two minutes; README, Performance).
DUCKDB_LOCK_TIMEOUT_VAR = "GRID_DUCKDB_LOCK_TIMEOUT_S"
DEFAULT_DUCKDB_LOCK_TIMEOUT_S = 600
MAX_DUCKDB_LOCK_TIMEOUT_S = 86_400
# Optional, every environment: when GRID counts as silent (the `heartbeat_gaps` check, README
# Checks). GRID's heartbeats are about GRID, not the engine, so local and production read the same.
HEARTBEAT_MAX_GAP_VAR = "GRID_HEARTBEAT_MAX_GAP_S"
HEARTBEAT_WINDOW_VAR = "GRID_HEARTBEAT_WINDOW_H"
HEARTBEAT_MAX_SILENCE_VAR = "GRID_HEARTBEAT_MAX_SILENCE_S"
DEFAULT_HEARTBEAT_MAX_GAP_S = 3600
DEFAULT_HEARTBEAT_WINDOW_H = 24
DEFAULT_HEARTBEAT_MAX_SILENCE_S = 3600
MAX_HEARTBEAT_SECONDS = 86_400
MAX_HEARTBEAT_WINDOW_H = 720
# Alerts (grid_assets.alerts), every environment. The webhook URL is a secret (Slack and Teams
# put the credential in its path): settings only record that it is set, the resource reads it
# through dg.EnvVar, and it is registered with the log redaction as soon as it is read.
ALERT_WEBHOOK_VAR = "GRID_ALERT_WEBHOOK_URL"
# Whether failed WARN checks alert too (failed ERROR checks and failed runs always do).
ALERT_ON_WARN_VAR = "GRID_ALERT_ON_WARN"
# The Dagster UI that alert messages link runs to.
UI_BASE_URL_VAR = "GRID_UI_BASE_URL"
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"

# -- the rules ------------------------------------------------------------------------------
# Catalog and schema names end up inside DDL, so only plain identifiers are accepted.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_]{0,64}$")
# host or host:port, no scheme, no path (the connector adds https:// and the port itself).
HOSTNAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?(?::\d{1,5})?$")
# A SQL warehouse's HTTP path (its Connection details tab); `endpoints` is the older spelling.
HTTP_PATH_PATTERN = re.compile(r"^/sql/1\.0/(?:warehouses|endpoints)/(?P<id>[A-Za-z0-9]+)$")
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
STAGING_VOLUME_PATTERN = re.compile(rf"^/Volumes/{_NAME}/{_NAME}/{_NAME}$")
MEMORY_SIZE_PATTERN = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,3})?\s?([KMGT]i?B)$", re.IGNORECASE)
WHOLE_NUMBER_PATTERN = re.compile(r"^[0-9]{1,6}$")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigurationError(RuntimeError):
    """The environment cannot describe a working lakehouse; raised before anything connects."""


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _hostname(value: str) -> str:
    if "://" in value:
        raise ValueError("must be a bare host name: drop the scheme (https://)")
    if "/" in value:
        raise ValueError("must be a bare host name: drop the path")
    if not HOSTNAME_PATTERN.fullmatch(value):
        raise ValueError("must look like adb-123.4.azuredatabricks.net[:port]")
    return value


def _matching(pattern: re.Pattern[str], rule: str, shown: int = 0):
    """A validator: the value must match `pattern`; the message says `rule` (and the first
    `shown` characters of what was given, for values that are not secret)."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            got = f"; got {value[:shown]!r}" if shown else ""
            raise ValueError(f"{rule}{got}")
        return value

    return check


def _memory_limit(value: str) -> str:
    size = MEMORY_SIZE_PATTERN.fullmatch(value)
    if size is None:
        raise ValueError("must be a size such as 256MB or 1GiB (KB to TB, KiB to TiB)")
    unit = size.group(2).upper()
    base = 1024 if "I" in unit else 1000
    number = float(value[: size.start(2)])
    if number * base ** "KMGT".index(unit[0]) * base < MIN_DUCKDB_MEMORY_BYTES:
        raise ValueError("must be at least 64MiB")
    return value


def _whole_number(high: int, unit: str):
    # Digits only and a length bound: "²" passes isdigit() and int() of 5,000 digits raises.
    def check(value: Any) -> int:
        text = str(value).strip()
        if not WHOLE_NUMBER_PATTERN.fullmatch(text) or not 1 <= int(text) <= high:
            raise ValueError(f"must be a whole number of {unit} in 1..{high}; got {text[:20]!r}")
        return int(text)

    return check


def _http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a malformed host or port
        usable = False
    if not usable or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def _boolean_word(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise ValueError(f"must be true or false (1/0, yes/no, on/off); got {word[:20]!r}")
    return word in TRUE_WORDS


_strip = BeforeValidator(_stripped)
Hostname = Annotated[str, _strip, AfterValidator(_hostname)]
HttpPath = Annotated[
    str,
    _strip,
    AfterValidator(_matching(HTTP_PATH_PATTERN, "must look like /sql/1.0/warehouses/<id>")),
]
Identifier = Annotated[
    str,
    _strip,
    AfterValidator(
        _matching(IDENTIFIER_PATTERN, "must be a plain identifier (letters, digits, underscores)")
    ),
]
SchemaPrefix = Annotated[
    str,
    _strip,
    AfterValidator(
        _matching(PREFIX_PATTERN, "may only hold letters, digits and underscores (64 at most)")
    ),
]
StagingVolume = Annotated[
    str,
    _strip,
    AfterValidator(
        _matching(
            STAGING_VOLUME_PATTERN,
            "must be a Unity Catalog volume path /Volumes/<catalog>/<schema>/<volume> "
            "(each a plain identifier, no trailing slash)",
            120,
        )
    ),
]
MemoryLimit = Annotated[str, _strip, AfterValidator(_memory_limit)]
ConnectTimeout = Annotated[int, BeforeValidator(_whole_number(MAX_CONNECT_TIMEOUT_S, "seconds"))]
LockTimeout = Annotated[int, BeforeValidator(_whole_number(MAX_DUCKDB_LOCK_TIMEOUT_S, "seconds"))]
HeartbeatSeconds = Annotated[int, BeforeValidator(_whole_number(MAX_HEARTBEAT_SECONDS, "seconds"))]
HeartbeatHours = Annotated[int, BeforeValidator(_whole_number(MAX_HEARTBEAT_WINDOW_H, "hours"))]
HttpUrl = Annotated[str, _strip, AfterValidator(_http_url)]
BooleanWord = Annotated[bool, BeforeValidator(_boolean_word)]


def _secret_not_blank(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("is empty")
    return SecretStr(value.get_secret_value().strip())


Token = Annotated[SecretStr, AfterValidator(_secret_not_blank)]


class _FromEnvironment(BaseModel):
    """A group of variables, read by their names (each field's validation alias); fields may
    also be given by their own names."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Any:
        """The group from `environ`; blank variables count as unset. One `ConfigurationError`
        names every problem."""
        names = {str(field.validation_alias) for field in cls.model_fields.values()}
        given = {k: v for k, v in environ.items() if k in names and v.strip()}
        return cls._validated(given)

    @classmethod
    def checked(cls, **fields: Any) -> Any:
        """The group from its fields' own names (a resource's values), with the same rules and
        messages naming the variables."""
        return cls._validated(fields)

    @classmethod
    def _validated(cls, data: Mapping[str, Any]) -> Any:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            variables = {n: str(f.validation_alias) for n, f in cls.model_fields.items()}
            raise ConfigurationError("; ".join(problems(exc, variables)) + ".") from None


class LocalConfig(_FromEnvironment):
    """The embedded DuckDB file (`GRID_ENV=local`)."""

    duckdb_path: Path = Field(default=DEFAULT_DUCKDB_PATH, validation_alias=DUCKDB_PATH_VAR)
    memory_limit: MemoryLimit = Field(
        default=DEFAULT_DUCKDB_MEMORY_LIMIT, validation_alias=DUCKDB_MEMORY_LIMIT_VAR
    )
    lock_timeout_s: LockTimeout = Field(
        default=DEFAULT_DUCKDB_LOCK_TIMEOUT_S, validation_alias=DUCKDB_LOCK_TIMEOUT_VAR
    )


class DatabricksConfig(_FromEnvironment):
    """A Databricks SQL warehouse (`GRID_ENV=production`). The token is a `SecretStr`: its repr,
    the model's repr and every validation message show it masked."""

    server_hostname: Hostname = Field(validation_alias=HOSTNAME_VAR)
    http_path: HttpPath = Field(validation_alias=HTTP_PATH_VAR)
    access_token: Token = Field(validation_alias=TOKEN_VAR, repr=False)
    catalog: Identifier = Field(validation_alias=CATALOG_VAR)
    schema_prefix: SchemaPrefix = Field(default="", validation_alias=SCHEMA_PREFIX_VAR)
    connect_timeout_s: ConnectTimeout = Field(
        default=DEFAULT_CONNECT_TIMEOUT_S, validation_alias=CONNECT_TIMEOUT_VAR
    )
    # None: derived from the catalog and prefix (`staging_volume_path`), created by the pipeline.
    staging_volume: StagingVolume | None = Field(default=None, validation_alias=STAGING_VOLUME_VAR)

    def __hash__(self) -> int:  # frozen: the key of the one engine per configuration
        return hash(tuple(getattr(self, name) for name in type(self).model_fields))

    @property
    def token(self) -> str:
        return self.access_token.get_secret_value()

    @property
    def staging_volume_path(self) -> str:
        return self.staging_volume or derived_staging_volume(self.catalog, self.schema_prefix)

    @property
    def volume_to_create(self) -> str | None:
        """The derived volume as catalog.schema.volume (the pipeline creates it), or None."""
        if self.staging_volume is not None:
            return None
        return ".".join(self.staging_volume_path.split("/")[2:])


class HeartbeatRules(_FromEnvironment):
    """When GRID counts as silent: the longest gap allowed between consecutive heartbeats inside
    the trailing window, that window, and the longest silence allowed since the newest one."""

    max_gap_s: HeartbeatSeconds = Field(
        default=DEFAULT_HEARTBEAT_MAX_GAP_S, validation_alias=HEARTBEAT_MAX_GAP_VAR
    )
    window_h: HeartbeatHours = Field(
        default=DEFAULT_HEARTBEAT_WINDOW_H, validation_alias=HEARTBEAT_WINDOW_VAR
    )
    max_silence_s: HeartbeatSeconds = Field(
        default=DEFAULT_HEARTBEAT_MAX_SILENCE_S, validation_alias=HEARTBEAT_MAX_SILENCE_VAR
    )


class AlertSettings(_FromEnvironment):
    """Whether WARN checks alert, and the UI that messages link to. The webhook URL itself is
    only checked here (`webhook_url` is a secret and never kept): see `alert_settings`."""

    webhook_url: Annotated[SecretStr, AfterValidator(lambda v: _secret_url(v))] | None = Field(
        default=None, validation_alias=ALERT_WEBHOOK_VAR, exclude=True, repr=False
    )
    on_warn: BooleanWord = Field(default=False, validation_alias=ALERT_ON_WARN_VAR)
    ui_base_url: Annotated[HttpUrl, AfterValidator(lambda v: v.rstrip("/"))] = Field(
        default=DEFAULT_UI_BASE_URL, validation_alias=UI_BASE_URL_VAR
    )

    @property
    def webhook_set(self) -> bool:
        return self.webhook_url is not None


def _secret_url(value: SecretStr) -> SecretStr:
    _http_url(value.get_secret_value().strip())
    return value


def problems(exc: ValidationError, variables: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per problem, naming the variable (`variables` maps field names to them);
    never the value given (a secret may be)."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    named = [(str((variables or {}).get(str(e["loc"][0]), e["loc"][0])), e) for e in errors]
    missing = [name for name, e in named if e["type"] == "missing"]
    found = []
    if missing:
        found.append("these required variables are missing or empty: " + ", ".join(missing))
    for name, error in named:
        if error["type"] != "missing":
            found.append(f"{name} {str(error['msg']).removeprefix('Value error, ')}")
    return found


def check(rule: Any, value: Any, variable: str) -> Any:
    """`value` validated by one rule type (e.g. `Hostname`); `ConfigurationError` otherwise."""
    try:
        return TypeAdapter(rule).validate_python(value)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ConfigurationError(f"{variable} {message}") from None


def problem(rule: Any, value: Any, variable: str) -> str | None:
    """Why `value` breaks `rule`, naming `variable`; None when it holds."""
    try:
        check(rule, value, variable)
    except ConfigurationError as exc:
        return str(exc)
    return None


def derived_staging_volume(catalog: str, schema_prefix: str = "") -> str:
    """The staging volume used when DATABRICKS_STAGING_VOLUME is unset."""
    return f"/Volumes/{catalog}/{schema_prefix}bronze/{DERIVED_STAGING_VOLUME}"
