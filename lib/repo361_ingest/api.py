"""One request to the export API's page endpoint, and strict parsing of its answer."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import requests

from repo361_ingest.auth import TokenProvider
from repo361_ingest.errors import ApiError, PageFormatError, UnsafeInputError
from repo361_ingest.http import HttpSettings, check_url_allowed, read_limited, redact_url

log = logging.getLogger(__name__)

PAGE_PATH = "/rawdata/export/page"
# A page is a short JSON list of file URLs; anything much bigger is not a page.
MAX_PAGE_BYTES = 16 * 1024 * 1024
MAX_FILES_PER_PAGE = 10_000
MAX_TOKEN_CHARS = 64 * 1024
MAX_NAME_CHARS = 1024
MAX_ERROR_BODY_CHARS = 200


@dataclass(frozen=True)
class FileRef:
    """One file of a page. The URL is pre-signed: it is kept out of repr and logs."""

    name: str
    url: str = field(repr=False)

    @property
    def safe_url(self) -> str:
        return redact_url(self.url)


@dataclass(frozen=True)
class Page:
    """A parsed page. ``request_token`` is the token that produced it (used to renew its URLs)."""

    request_token: str | None
    continuation_token: str | None
    files: tuple[FileRef, ...]
    expiry_hours: float
    fetched_at: float  # time.time() when the answer arrived: its URLs expire from here

    @property
    def next_token(self) -> str | None:
        """The returned token, or None when it is null or empty."""
        return self.continuation_token or None


def parse_page(body: bytes, request_token: str | None, where: str) -> Page:
    """Validate a page body against the documented shape; ``where`` names the page in errors."""
    if len(body) > MAX_PAGE_BYTES:
        raise PageFormatError(f"{where}: page body of {len(body)} bytes exceeds {MAX_PAGE_BYTES}")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PageFormatError(f"{where}: page is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise PageFormatError(f"{where}: page is a JSON {type(doc).__name__}, expected an object")
    fmt = doc.get("format", "avro")
    if fmt != "avro":
        raise PageFormatError(f"{where}: page format is {str(fmt)[:40]!r}, expected 'avro'")
    token = doc.get("continuationToken")
    if token is not None and not isinstance(token, str):
        raise PageFormatError(f"{where}: continuationToken is a {type(token).__name__}, expected a string")
    if token is not None and len(token) > MAX_TOKEN_CHARS:
        raise PageFormatError(f"{where}: continuationToken longer than {MAX_TOKEN_CHARS} chars")
    raw_files = doc.get("files")
    if raw_files is None:
        raw_files = []
    if not isinstance(raw_files, list):
        raise PageFormatError(f"{where}: 'files' is a {type(raw_files).__name__}, expected a list")
    if len(raw_files) > MAX_FILES_PER_PAGE:
        raise PageFormatError(f"{where}: {len(raw_files)} files exceed the bound of {MAX_FILES_PER_PAGE}")
    files = []
    for i, entry in enumerate(raw_files):
        if not isinstance(entry, dict):
            raise PageFormatError(f"{where}: files[{i}] is not an object")
        name, url = entry.get("name"), entry.get("url")
        if not isinstance(name, str) or not name:
            raise PageFormatError(f"{where}: files[{i}] has no usable 'name'")
        if len(name) > MAX_NAME_CHARS:
            raise PageFormatError(
                f"{where}: files[{i}] has a name of {len(name)} chars, over the bound of {MAX_NAME_CHARS}"
                f" (starts {name[:40]!r})"
            )
        if not isinstance(url, str) or not url:
            raise PageFormatError(f"{where}: file {name!r} has no 'url'")
        # Refused here, on the driver, before any connection is made to it.
        check_url_allowed(url, f"{where}: download URL of file {name!r}")
        files.append(FileRef(name=name, url=url))
    expiry = doc.get("expiryHours", 1)
    if not isinstance(expiry, (int, float)) or isinstance(expiry, bool) or expiry <= 0:
        expiry = 1
    return Page(
        request_token=request_token,
        continuation_token=token,
        files=tuple(files),
        expiry_hours=float(expiry),
        fetched_at=time.time(),
    )


class ExportApi:
    """The page endpoint: POST the continuation token, get a validated ``Page``.

    429/5xx/connection errors are retried by the session (see ``http.build_session``); a 401
    refreshes the token once; any other 4xx fails at once.
    """

    def __init__(
        self, base_url: str, tokens: TokenProvider, session: requests.Session, http: HttpSettings
    ) -> None:
        self._url = base_url.rstrip("/") + PAGE_PATH
        check_url_allowed(self._url, "api_base_url")
        self._tokens = tokens
        self._session = session
        self._http = http
        self.requests_made = 0

    def fetch_page(self, request_token: str | None, page_seq: int) -> Page:
        """Request the page that ``request_token`` points at (None = from the beginning)."""
        where = f"page {page_seq}"
        body = {"continuationToken": request_token, "format": "avro"}
        for attempt in (1, 2):
            bearer = self._tokens.token()
            try:
                resp = self._session.post(
                    self._url,
                    json=body,
                    headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
                    timeout=self._http.timeout,
                    allow_redirects=False,  # the bearer token must not follow a redirect
                    stream=True,  # read with a bound below, never whole into memory
                )
            except requests.RequestException as exc:
                raise ApiError(
                    f"{where}: request to {redact_url(self._url)} failed after retries:"
                    f" {type(exc).__name__}"
                ) from None
            self.requests_made += 1
            with resp:
                if resp.status_code == 401 and attempt == 1:
                    log.info("%s: access token rejected (401), refreshing it once", where)
                    self._tokens.invalidate(bearer)
                    continue
                if resp.status_code != 200:
                    snippet = _error_snippet(resp)
                    raise ApiError(
                        f"{where}: export API answered HTTP {resp.status_code} at"
                        f" {redact_url(self._url)}: {snippet}"
                    )
                try:
                    content = read_limited(resp, MAX_PAGE_BYTES, f"{where}: page body")
                except requests.RequestException as exc:
                    raise ApiError(
                        f"{where}: reading the page from {redact_url(self._url)} failed: {type(exc).__name__}"
                    ) from None
                except UnsafeInputError as exc:
                    raise PageFormatError(str(exc)) from None
            return parse_page(content, request_token, where)
        raise ApiError(f"{where}: export API rejected a freshly issued token (HTTP 401 twice)")


def _error_snippet(resp: requests.Response) -> str:
    """The first bytes of an error body, read without loading a huge one, on one line."""
    try:
        head = next(resp.iter_content(MAX_ERROR_BODY_CHARS * 4), b"")
    except requests.RequestException:
        return "<unreadable body>"
    text = head.decode("utf-8", "replace")[:MAX_ERROR_BODY_CHARS]
    return text.replace("\n", " ")
