"""Keep secret values out of log lines, exception messages and tracebacks.

`redact(text)` masks, in this order:

- every configured secret value verbatim: `DATABRICKS_TOKEN` from the environment and any value
  passed to `register_secret` (the engine factory registers the token it is given) or
  `register_secret_url` (the alert webhook URL, and its path);
- Databricks personal access tokens (`dapi` + hex digits), whoever they belong to;
- `Bearer <token>` / `Basic <credentials>` authorization values;
- the password part of `scheme://user:password@host` URLs (`databricks://token:<token>@host`);
- `token=...`, `password: ...`, `"access_token": "..."` and similar key/value pairs.

`install_redaction()` applies it to every log record of the process at creation time, through a
log-record factory. A filter on a logger would not do: Python applies a logger's filters only to
records created on that very logger, not to those propagating from children such as
`databricks.sql.backend.thrift_backend` or `urllib3.connectionpool`. `RedactingFilter` is also
attached to the package's, Dagster's and the connector's loggers and to the root handlers for
records built without the factory (`logging.makeLogRecord`).

`redact_exception(exc)` rewrites an exception chain's messages in place; the engines call it on
every error that leaves a Databricks connection, so `str(exc)`, tracebacks and Dagster's
serialized errors only ever see the masked text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import traceback
from urllib.parse import quote, urlsplit

MASK = "********"
TOKEN_VARIABLE = "DATABRICKS_TOKEN"
# Shorter values are not masked verbatim: masking every "x" in every message helps nobody.
MIN_SECRET_LENGTH = 8
LOGGER_NAMES = (
    "grid_assets",
    "dagster",
    "databricks",
    "databricks.sql",
    "databricks.sdk",
    "dagster_databricks",
    "urllib3",
    "sqlalchemy",
    "py4j",
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Databricks personal access tokens: dapi + 32 hex digits, sometimes with a "-N" suffix.
    (re.compile(r"dapi[0-9A-Za-z]{8,}(?:-\d+)?"), MASK),
    # Authorization header values.
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1\2{MASK}"),
    # The password in scheme://user:password@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s@]+@"), rf"\1{MASK}@"),
    # token=..., password: ..., "access_token": "...", client_secret=...
    (
        re.compile(
            r"(?i)\b((?:access_|auth_|client_|api_)?(?:token|password|passwd|secret|api_key)"
            r"[\"']?\s*[=:]\s*[\"']?)[^\s\"',;&@)}\]]+"
        ),
        rf"\1{MASK}",
    ),
)

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask `value` (and its URL-encoded form) wherever it appears from now on."""
    value = (value or "").strip()
    if len(value) >= MIN_SECRET_LENGTH:
        with _registered_lock:
            _registered.add(value)


def register_secret_url(url: str | None) -> None:
    """Mask a URL whose path is its credential (Slack and Teams webhooks): the URL itself and,
    because HTTP libraries name the path alone in their errors, its path and query as well."""
    url = (url or "").strip()
    register_secret(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    register_secret(parts.path + (f"?{parts.query}" if parts.query else ""))


def _secret_values() -> list[str]:
    values = set(_registered)
    configured = os.environ.get(TOKEN_VARIABLE, "").strip()
    if len(configured) >= MIN_SECRET_LENGTH:
        values.add(configured)
    values |= {quote(v, safe="") for v in values}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every configured secret and every secret-shaped value replaced by MASK."""
    for secret in _secret_values():
        text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


def redact_exception(exc: BaseException) -> BaseException:
    """Mask secrets in the messages of `exc` and every exception chained to it, in place.

    Covers `args`, the string attributes drivers keep their text in (`message`, `statement`,
    ...), the Databricks connector's `context` dict, notes, and the chain through `__cause__`,
    `__context__`, SQLAlchemy's `orig` and urllib3's `reason`. Returns `exc`.
    """
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        with contextlib.suppress(AttributeError, TypeError):
            current.args = tuple(_redact_value(a) for a in current.args)
        for name in ("message", "msg", "statement", "detail", "reason"):
            value = current.__dict__.get(name)
            if isinstance(value, str):
                current.__dict__[name] = redact(value)
        context = current.__dict__.get("context")
        if isinstance(context, dict):
            for key, value in list(context.items()):
                context[key] = _redact_value(value)
        notes = current.__dict__.get("__notes__")
        if isinstance(notes, list):
            notes[:] = [_redact_value(n) for n in notes]
        pending.extend(
            (
                current.__cause__,
                current.__context__,
                current.__dict__.get("orig"),
                current.__dict__.get("reason"),
                *getattr(current, "exceptions", ()),
                *(a for a in getattr(current, "args", ()) if isinstance(a, BaseException)),
            )
        )
    return exc


def format_exception_redacted(exc: BaseException) -> str:
    """The full traceback text of `exc`, masked."""
    return redact("".join(traceback.format_exception(exc)))


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the record's final message, exception text and stack text, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: let logging report it as usual
        return record
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        masked = redact(text)
        if masked != text:
            # Formatters print exc_text when it is set; dropping exc_info keeps every other
            # consumer from formatting the unmasked exception again.
            record.exc_text, record.exc_info = masked, None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """Masks secrets in each record it sees; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = RedactingFilter()
_install_lock = threading.Lock()


def _redacting_factory(base):
    def factory(*args, **kwargs):
        return redact_record(base(*args, **kwargs))

    factory.grid_redacting = True  # type: ignore[attr-defined]
    return factory


def install_redaction() -> None:
    """Idempotent: mask every log record of the process from now on."""
    with _install_lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "grid_redacting", False):
            logging.setLogRecordFactory(_redacting_factory(current))
        for name in LOGGER_NAMES:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
        for handler in logging.getLogger().handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)


__all__ = [
    "MASK",
    "RedactingFilter",
    "format_exception_redacted",
    "install_redaction",
    "redact",
    "redact_exception",
    "redact_record",
    "register_secret",
    "register_secret_url",
]
