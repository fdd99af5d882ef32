"""HTTP plumbing shared by the driver (token, pages) and the executors (downloads).

Retries are urllib3's ``Retry`` mounted on a requests session: 429 honours Retry-After, 5xx and
connection errors back off exponentially with jitter, bounded by count. Every request carries
connect and read timeouts. TLS verification stays on (an extra CA bundle may be configured).
Only https URLs are followed, except plain http to a loopback address (the emulator).

Every session is a :class:`SafeSession`: redirects are bounded and checked against the same URL
rule, an ``Authorization`` header never survives a redirect, and ``~/.netrc`` is never consulted
(requests would otherwise attach netrc credentials to any host listed there, storage included).
Bodies from the remote side are read with :func:`read_limited`, never whole into memory.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from repo361_ingest.errors import ConfigError, UnsafeInputError

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A server asking us to wait longer than this is treated as down rather than obeyed forever.
RETRY_AFTER_MAX_S = 120.0
# Redirects followed per request (storage may redirect once or twice; 30, requests' default, is a loop).
MAX_REDIRECTS = 3
# The environment variables requests itself reads for an extra CA bundle, in its order.
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


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
        """The CA bundle to verify TLS with: ``ca_bundle``, else $REQUESTS_CA_BUNDLE /
        $CURL_CA_BUNDLE (read where the session is built, so executors honour their own
        environment), else the default trust store. Never False: verification cannot be turned off.
        """
        return self.ca_bundle or next((os.environ[n] for n in CA_BUNDLE_ENV if os.environ.get(n)), True)


class _NoAuth(requests.auth.AuthBase):
    """An explicit "no credentials" auth: stops requests from looking in ~/.netrc."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


class SafeSession(requests.Session):
    """A requests session that follows only safe redirects and never adds credentials by itself.

    - a redirect target must pass :func:`check_url_allowed` (https, or http to loopback);
    - ``Authorization`` is dropped on every redirect, whatever the target (requests keeps it
      on a same-host redirect, and re-reads ~/.netrc for the new host);
    - ~/.netrc is never read: only the code that asks for a header sends one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.auth = _NoAuth()
        self.max_redirects = MAX_REDIRECTS

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is not None:
            absolute = requests.compat.urljoin(resp.url, target)
            check_url_allowed(absolute, "redirect target")
        return target

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        prepared_request.headers.pop("Authorization", None)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings: dict[str, Any] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        # requests lets $REQUESTS_CA_BUNDLE override the session's bundle; the configured
        # ``ca_bundle`` must win, and nothing may turn verification off.
        if verify is None and isinstance(self.verify, str):
            settings["verify"] = self.verify
        if settings.get("verify") is False:
            settings["verify"] = True
        return settings


def check_ca_bundle(settings: HttpSettings) -> None:
    """Fail at start-up, naming the key, when the configured CA bundle is not a readable file."""
    path = settings.ca_bundle
    if path and not os.path.isfile(path):
        raise ConfigError(f"config key 'ca_bundle' names {path!r}, which is not a file (PEM CA bundle)")


def build_session(settings: HttpSettings, methods: tuple[str, ...] = ("GET", "POST")) -> requests.Session:
    """A session with bounded retries on 429/5xx/connection errors; no retry on other 4xx.

    POST is retried too: a page request with the same continuation token is idempotent.
    """
    check_ca_bundle(settings)
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
    session = SafeSession()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=8)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = settings.verify
    # Proxies and CA bundles from the environment stay honoured (corporate networks), but never
    # ~/.netrc credentials (SafeSession): an Authorization header must come from us only.
    session.trust_env = True
    return session


def read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    """The body of a ``stream=True`` response, failing once it exceeds ``limit`` bytes.

    Checks Content-Length first, then counts while reading, so a huge or endless body costs at
    most ``limit`` plus one chunk of memory. ``what`` names the body in the error
    ("page 3: page body").
    """
    declared = resp.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        resp.close()
        raise UnsafeInputError(f"{what} of {int(declared)} bytes exceeds the bound of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise UnsafeInputError(f"{what} exceeds the bound of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
