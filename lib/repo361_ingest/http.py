"""HTTP plumbing shared by the driver (token, pages) and the executors (downloads).

Retries are urllib3's ``Retry`` mounted on a requests session: 429 honours Retry-After, 5xx and
connection errors back off exponentially with jitter, bounded by count. Every request carries
connect and read timeouts. TLS verification stays on (an extra CA bundle may be configured).
Only https URLs are followed, except plain http to a loopback address (the emulator).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from repo361_ingest.errors import UnsafeInputError

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A server asking us to wait longer than this is treated as down rather than obeyed forever.
RETRY_AFTER_MAX_S = 120.0


class _BoundedRetry(Retry):
    """urllib3 Retry whose Retry-After wait is capped (a huge value would hang the job)."""

    def get_retry_after(self, response):  # type: ignore[no-untyped-def]
        value = super().get_retry_after(response)
        return None if value is None else min(value, RETRY_AFTER_MAX_S)


@dataclass(frozen=True)
class HttpSettings:
    """Plain, picklable HTTP settings: shipped to executors, which build their own session."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    retries: int = 5
    backoff_factor_s: float = 0.5
    backoff_max_s: float = 30.0
    ca_bundle: str | None = None

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_s, self.read_timeout_s)

    @property
    def verify(self) -> bool | str:
        return self.ca_bundle or True


def build_session(settings: HttpSettings, methods: tuple[str, ...] = ("GET", "POST")) -> requests.Session:
    """A session with bounded retries on 429/5xx/connection errors; no retry on other 4xx.

    POST is retried too: a page request with the same continuation token is idempotent.
    """
    retry = _BoundedRetry(
        total=settings.retries,
        connect=settings.retries,
        read=settings.retries,
        status=settings.retries,
        other=0,
        allowed_methods=frozenset(methods),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=settings.backoff_factor_s,
        backoff_max=settings.backoff_max_s,
        backoff_jitter=settings.backoff_factor_s,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = settings.verify
    # Proxies and netrc from the environment stay honoured (corporate networks), but never
    # ~/.netrc credentials: an Authorization header must come from us only.
    session.trust_env = True
    session.auth = None
    return session


def is_loopback_host(host: str | None) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url_allowed(url: str, what: str) -> None:
    """Refuse anything but https, or plain http to loopback. ``what`` names the URL in the error."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname:
        return
    if scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise UnsafeInputError(
        f"{what} must be https (or http to a loopback address), got {redact_url(url)}"
    )


def redact_url(url: str) -> str:
    """The URL without query, fragment or user-info: what may appear in logs and tables.

    Pre-signed download URLs carry their signature in the query string.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL: the unit the Authorization header is scoped to."""
    parts = urlsplit(url)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
