"""OAuth2 client-credentials tokens for the export API, refreshed before they expire."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

import requests

from repo361_ingest.errors import AuthError, UnsafeInputError
from repo361_ingest.http import HttpSettings, check_url_allowed, read_limited, redact_url
from repo361_ingest.logs import register_secret

log = logging.getLogger(__name__)

# Refresh this long before the announced expiry, so a token never dies in flight.
REFRESH_MARGIN_S = 60.0
# Used when the token endpoint does not say how long its token lives.
DEFAULT_TOKEN_TTL_S = 3600.0
# A token answer is a few hundred bytes (a JWT a few KB); anything far bigger is not one.
MAX_TOKEN_BODY_BYTES = 64 * 1024
MAX_ACCESS_TOKEN_CHARS = 16 * 1024


@dataclass(frozen=True)
class Credentials:
    """Client id and secret. The secret never appears in repr, str or logs."""

    client_id: str
    client_secret: str = field(repr=False)

    def __str__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, client_secret=***)"


class TokenProvider:
    """Fetches a bearer token, caches it, and refreshes it before expiry or after a 401.

    Thread-safe: the look-ahead pager and the main loop may ask at the same time.
    """

    def __init__(
        self,
        token_url: str,
        credentials: Credentials,
        session: requests.Session,
        http: HttpSettings,
    ) -> None:
        check_url_allowed(token_url, "token_url")
        register_secret(credentials.client_secret)
        self._token_url = token_url
        self._credentials = credentials
        self._session = session
        self._http = http
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetch_count = 0

    def __repr__(self) -> str:
        return f"TokenProvider(token_url={redact_url(self._token_url)!r})"

    def token(self) -> str:
        """A token valid for at least REFRESH_MARGIN_S more seconds (fetched if needed)."""
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - REFRESH_MARGIN_S:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, rejected: str) -> None:
        """Forget ``rejected`` after a 401, unless another thread already replaced it."""
        with self._lock:
            if self._token == rejected:
                self._token = None

    def _fetch(self) -> None:
        data = {
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret,
            "grant_type": "client_credentials",
        }
        where = redact_url(self._token_url)
        try:
            resp = self._session.post(
                self._token_url, data=data, timeout=self._http.timeout, allow_redirects=False,
                stream=True,
            )
            with resp:
                body_bytes = read_limited(resp, MAX_TOKEN_BODY_BYTES, f"answer of token endpoint {where}")
        except UnsafeInputError as exc:
            raise AuthError(str(exc)) from None
        except requests.RequestException as exc:
            # requests' messages can hold the URL; ours names only the redacted endpoint.
            raise AuthError(f"token request to {where} failed: {type(exc).__name__}") from None
        if resp.status_code in (400, 401, 403):
            raise AuthError(
                f"token endpoint {where} refused the client credentials (HTTP {resp.status_code});"
                " check REPO361_CLIENT_ID / REPO361_CLIENT_SECRET or the secret scope"
            )
        if resp.status_code != 200:
            raise AuthError(f"token endpoint {where} answered HTTP {resp.status_code}")
        try:
            body = json.loads(body_bytes)
            token = body["access_token"]
            ttl = float(body.get("expires_in") or DEFAULT_TOKEN_TTL_S)
        except (ValueError, KeyError, TypeError):
            raise AuthError(f"token endpoint {where} answered a body without access_token") from None
        if not isinstance(token, str) or not token:
            raise AuthError(f"token endpoint {where} answered an empty access_token")
        if len(token) > MAX_ACCESS_TOKEN_CHARS:
            raise AuthError(
                f"token endpoint {where} answered an access_token of {len(token)} chars,"
                f" over the bound of {MAX_ACCESS_TOKEN_CHARS}"
            )
        register_secret(token)
        self._token = token
        self._expires_at = time.monotonic() + ttl
        self.fetch_count += 1
        log.debug("fetched an access token valid for %.0f s", ttl)
