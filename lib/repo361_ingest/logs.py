"""Logging set-up with a redacting filter: secrets and URL query strings never reach a handler.

The filter is a second line of defence: the code logs names and redacted URLs only, but a
library (urllib3 at DEBUG logs request lines with the query) might not.
"""

from __future__ import annotations

import logging
import re
import sys
import threading

# The query string of any URL: pre-signed download URLs carry their signature there.
_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*")
# Request lines such as urllib3's '"GET /files/x?sig=... HTTP/1.1"'.
_PATH_QUERY = re.compile(r'("(?:GET|POST|PUT|HEAD) [^\s?"]+)\?[^\s"]*')
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
REDACTED = "***"


class _Secrets:
    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:
            with self._lock:
                self._values.add(value)

    def scrub(self, text: str) -> str:
        text = _URL_QUERY.sub(r"\1?" + REDACTED, text)
        text = _PATH_QUERY.sub(r"\1?" + REDACTED, text)
        text = _BEARER.sub(r"\1" + REDACTED, text)
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, REDACTED)
        return text


SECRETS = _Secrets()


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log record from now on (client secret, access tokens)."""
    SECRETS.add(value)


def scrub(text: str) -> str:
    """``text`` with registered secrets, bearer tokens and URL query strings masked."""
    return SECRETS.scrub(text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = scrub(message)
        record.args = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def configure(level: str = "INFO") -> None:
    """Send log records to stderr through the redacting filter (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, "_repo361", False):
            handler.setLevel(level)
            return
    handler = logging.StreamHandler(sys.stderr)
    handler._repo361 = True  # type: ignore[attr-defined]
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    # py4j logs every gateway command at DEBUG: noise, and it would echo DataFrame contents.
    logging.getLogger("py4j").setLevel(max(logging.INFO, logging.getLevelName(level)))
