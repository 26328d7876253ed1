"""Mask secrets in every log record of the package, Dagster and the Databricks connector."""

from __future__ import annotations

import logging
import os
import re

from grid_assets.settings import REQUIRED_DATABRICKS_VARS

MASK = "********"
_PATTERNS = [
    re.compile(r"dapi[0-9a-zA-Z\-]{8,}"),  # Databricks personal access tokens
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-\._~\+/]+=*"),
    re.compile(r"(?i)(token:)[^@\s/]+(@)"),  # databricks://token:<secret>@host
    re.compile(r"(?i)(://[^:/\s]+:)[^@\s/]+(@)"),  # any user:password@ in a URL
    re.compile(r"(?i)((?:access_token|token|password|secret)[\"']?\s*[=:]\s*[\"']?)[^\s\"',}&]+"),
]
LOGGER_NAMES = ("grid_assets", "dagster", "databricks", "databricks.sql", "databricks.sdk", "urllib3",
                "sqlalchemy", "py4j")


def redact(text: str) -> str:
    """`text` with every token-shaped value and the configured token itself masked."""
    secret = os.environ.get("DATABRICKS_TOKEN", "").strip()
    if secret:
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK
                           + (m.group(2) if m.re.groups >= 2 else ""), text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites the record's final message, arguments, exception and stack text in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_redaction() -> None:
    """Idempotent: attach the filter to the relevant loggers and to every root handler."""
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


__all__ = ["REQUIRED_DATABRICKS_VARS", "install_redaction", "redact"]
