"""The staging volume: it exists (a set one, through the Files API) or can be created (the
derived one, with the pipeline's own statement), and the token may upload, list, read back and
remove a small file in it through the pipeline's own Files API client. A refusal names the grant
that is missing."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from grid_assets.check_config.report import (
    FAIL,
    IMPORT_ALLOWANCE_S,
    PASS,
    Report,
    bounded,
    one_line,
    warn,
)
from grid_assets.config import (
    CATALOG_VAR,
    HOSTNAME_VAR,
    HTTP_PATH_VAR,
    SCHEMA_PREFIX_VAR,
    STAGING_VOLUME_VAR,
    TOKEN_VAR,
    derived_staging_volume,
)
from grid_assets.lakehouse.databricks import DatabricksTarget, Deadline

VOLUME_CHECK = "staging volume"
VOLUME_WRITE = "staging volume write"
PRINCIPAL = "`<principal>`"  # the token's user or service principal


def staging_volume(env: Mapping[str, str]) -> tuple[str, bool]:
    """The staging volume's path and whether it is derived (settings' rule; already checked)."""
    volume = env.get(STAGING_VOLUME_VAR, "").strip()
    if volume:
        return volume, False
    catalog = env.get(CATALOG_VAR, "").strip()
    return derived_staging_volume(catalog, env.get(SCHEMA_PREFIX_VAR, "").strip()), True


def volume_hint(exc: BaseException, step: str, volume: str, derived: bool, timeout: float) -> str:
    """What to grant (or fix) when the Files API refused `step` on `volume`."""
    from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated

    catalog, schema, name = volume.split("/")[2:5]
    dotted = f"{catalog}.{schema}.{name}"
    parents = f"USE CATALOG ON CATALOG {catalog} and USE SCHEMA ON SCHEMA {catalog}.{schema}"
    if isinstance(exc, Deadline):
        return f"the Files API gave no answer within {timeout:g} s: check HTTPS to the workspace"
    if isinstance(exc, Unauthenticated):
        return f"{TOKEN_VAR} is not accepted by the workspace's Files API"
    if isinstance(exc, PermissionDenied):
        if step in ("upload", "delete"):
            return (
                f"GRANT WRITE VOLUME, READ VOLUME ON VOLUME {dotted} TO {PRINCIPAL} (with "
                f"{parents}): batches are uploaded there and removed after their load"
            )
        return (
            f"GRANT READ VOLUME ON VOLUME {dotted} TO {PRINCIPAL} (with {parents}): the loads "
            "read the staged files (parquet.`<path>`) and the sweep lists them"
        )
    if isinstance(exc, NotFound):
        if derived:
            return f"the volume is not visible after CREATE VOLUME: grant {parents}"
        return (
            f"create the volume (CREATE VOLUME {dotted}) or unset {STAGING_VOLUME_VAR} to let "
            f"the pipeline create its own; if it exists, grant {parents}"
        )
    return f"the Files API at https://<{HOSTNAME_VAR}> failed: see the error"


def short_error(exc: BaseException) -> str:
    # The SDK appends its configuration ("Config: host=..., token=***, ...") to every error.
    return one_line(exc).split(" Config: ")[0]


def check_staging_volume(
    report: Report, env: Mapping[str, str], run: Callable[[str], list[Any]], timeout: float
) -> None:
    """The staging volume exists (the derived one: created as the pipeline creates it), and the
    token may upload, list, read and remove a file in it through the pipeline's Files API client.
    The probe file is removed whatever fails after its upload (unless the delete is refused)."""
    if report.results.get(STAGING_VOLUME_VAR) != PASS:
        report.skip_unless(VOLUME_CHECK, STAGING_VOLUME_VAR)
        report.skip_unless(VOLUME_WRITE, VOLUME_CHECK)
        return
    volume, derived = staging_volume(env)
    catalog, schema, name = volume.split("/")[2:5]
    dotted = f"{catalog}.{schema}.{name}"
    files: Any = None

    def client() -> Any:
        from grid_assets.lakehouse.staging import sdk_files

        target = DatabricksTarget.parse(env[HOSTNAME_VAR], env.get(HTTP_PATH_VAR, ""))
        token = env[TOKEN_VAR].strip()
        return bounded(
            lambda: sdk_files(f"https://{target.address}", token, int(timeout)), IMPORT_ALLOWANCE_S
        )

    if derived:
        if not report.skip_unless(VOLUME_CHECK, "layer schemas"):
            try:
                run(f"CREATE VOLUME IF NOT EXISTS {dotted}")  # the pipeline's own statement
                report.line(PASS, VOLUME_CHECK, f"{dotted} exists (or was just created)")
            except Exception as exc:
                report.line(
                    FAIL,
                    VOLUME_CHECK,
                    one_line(exc),
                    f"GRANT CREATE VOLUME ON SCHEMA {catalog}.{schema} TO {PRINCIPAL}, or set "
                    f"{STAGING_VOLUME_VAR} to a volume an administrator manages",
                )
    elif not report.skip_unless(VOLUME_CHECK, "port reachable", TOKEN_VAR):
        try:
            files = client()
            bounded(lambda: files.get_directory_metadata(volume), timeout)
            report.line(PASS, VOLUME_CHECK, f"{volume} exists")
        except Exception as exc:
            hint = volume_hint(exc, "exists", volume, derived, timeout)
            report.line(FAIL, VOLUME_CHECK, short_error(exc), hint)

    if report.skip_unless(VOLUME_WRITE, VOLUME_CHECK):
        return
    check_volume_round_trip(report, files or client(), volume, derived, timeout)


def check_volume_round_trip(
    report: Report, files: Any, volume: str, derived: bool, timeout: float
) -> None:
    from grid_assets.lakehouse.staging import STAGING_FOLDER

    folder = f"{volume}/{STAGING_FOLDER}"
    probe = f"{folder}/check-{uuid.uuid4().hex[:12]}.txt"
    body = f"grid config check {probe}\n".encode()
    step = "upload"
    try:
        bounded(lambda: files.upload(probe, io.BytesIO(body), overwrite=True), timeout)
        step = "list"
        listed = bounded(lambda: [e.path for e in files.list_directory_contents(folder)], timeout)
        if probe not in listed:
            raise RuntimeError(f"{probe} was uploaded but is not listed in {folder}")
        step = "read"
        read = bounded(lambda: files.download(probe).contents.read(), timeout)
        if read != body:
            raise RuntimeError(f"{probe} read back {len(read)} bytes instead of {len(body)}")
        step = "delete"
        bounded(lambda: files.delete(probe), timeout)
        report.line(PASS, VOLUME_WRITE, f"uploaded, listed, read and removed {probe}")
    except Exception as exc:
        hint = volume_hint(exc, step, volume, derived, timeout)
        report.line(FAIL, VOLUME_WRITE, f"{step}: {short_error(exc)}", hint)
        # After a refused upload there is nothing to remove, and a refused delete would only be
        # refused again; a timed-out upload may still land.
        if step in ("list", "read") or (step == "upload" and isinstance(exc, Deadline)):
            remove_probe(files, probe, timeout)


def remove_probe(files: Any, probe: str, timeout: float) -> None:
    """Best effort: the probe must not stay behind (the pipeline's sweep would remove it too)."""
    try:
        bounded(lambda: files.delete(probe), timeout)
    except Exception as exc:
        if type(exc).__name__ not in ("NotFound", "ResourceDoesNotExist"):
            warn(f"could not remove {probe}: {short_error(exc)}")
