"""Logging set-up that scrubs secrets and URL query strings from every log record.

The code logs names and redacted URLs only, but libraries do not: urllib3 logs request lines with
the query string (the download signature) at DEBUG, and requests' exceptions carry the full URL.
A filter on one handler would leave every other handler (pytest's, Databricks' driver log, a
user's) unprotected, and a filter on a logger does not see records of its child loggers. So
:func:`install` wraps the process-wide log record factory: every record, from any logger, is
scrubbed the moment it is created, before any handler or filter sees it. The handler filter stays
as a second line of defence for records built by hand.
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
# A query string anywhere, also without scheme and host (requests' "Max retries exceeded with
# url: /files/x?sig=..." and urllib3's Retry repr carry the path and query only).
_ANY_QUERY = re.compile(r"\?[^\s'\"?#]*=[^\s'\"#]*")
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
        text = _ANY_QUERY.sub("?" + REDACTED, text)
        text = _BEARER.sub(r"\1" + REDACTED, text)
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, REDACTED)
        return text


SECRETS = _Secrets()


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log record from now on (client secret, access tokens).

    Also installs the scrubbing record factory, so that holding a secret is enough to protect it
    (a notebook that never calls :func:`configure` is covered too).
    """
    SECRETS.add(value)
    install()


def scrub(text: str) -> str:
    """``text`` with registered secrets, bearer tokens and URL query strings masked."""
    return SECRETS.scrub(text)


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the record's message, traceback and stack text by scrubbed text (in place).

    The exception object itself is dropped (``exc_info = None``) after its text is rendered and
    scrubbed: a handler that re-renders it would otherwise print the signed URL again.
    """
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string: keep the raw parts, scrubbed
        message = f"{record.msg!s} {record.args!r}"
    record.msg = scrub(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    record.exc_info = None
    if record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """Scrubs records that did not come through the record factory (built by hand)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_install_lock = threading.Lock()


def install() -> None:
    """Scrub every log record of this process at creation, whatever logger or handler (idempotent).

    Chains to the current record factory, so another library's factory keeps working.
    """
    with _install_lock:
        current = logging.getLogRecordFactory()
        if getattr(current, "_repo361_scrubbing", False):
            return

        def factory(*args, **kwargs):  # type: ignore[no-untyped-def]
            return scrub_record(current(*args, **kwargs))

        factory._repo361_scrubbing = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


def configure(level: str = "INFO") -> None:
    """Send log records to stderr through the redacting filter (idempotent)."""
    install()
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
    # At INFO it also prints "Closing down clientserver connection" after the summary.
    logging.getLogger("py4j").setLevel(logging.WARNING)
