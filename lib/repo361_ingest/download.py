"""Executor side: stream one pre-signed URL into staging, verify it, describe it in a manifest row.

Runs inside Spark tasks, so it holds no SparkSession, no token and no driver state: only the entry
(name, signed URL, destination) and plain settings. It never raises for a per-file problem; it
returns a manifest row whose ``status`` says what happened, so the driver can renew expired URLs
and name the failed file without a signed URL ever travelling inside a Spark exception.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import fastavro
import fastavro.schema
import requests
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from repo361_ingest import failpoints, staging
from repo361_ingest.errors import CorruptFileError, DownloadError, UnsafeInputError
from repo361_ingest.logs import scrub
from repo361_ingest.http import HttpSettings, build_session, check_url_allowed, redact_url

CHUNK_BYTES = 1024 * 1024
EXPIRED_STATUSES = (403, 404, 410)
MAX_REDIRECTS = 3

STATUS_OK = "ok"
STATUS_EXPIRED = "expired"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class DownloadSettings:
    """Picklable settings shipped to the executors with each batch."""

    http: HttpSettings
    max_bytes: int
    attempts: int = 3
    threads_per_task: int = 4


class _Truncated(Exception):
    """The body ended before its Content-Length: worth another attempt."""


def _session(settings: DownloadSettings) -> requests.Session:
    """A ``http.SafeSession``: redirect targets checked and bounded, no credentials of any kind."""
    session = build_session(settings.http, methods=("GET",))
    session.max_redirects = MAX_REDIRECTS
    return session


def avro_summary(path: str) -> tuple[str, str, int]:
    """(schema fingerprint, writer schema JSON, record count) of an Avro container file.

    Walks the blocks (decompressing each and checking its sync marker) without decoding records,
    so a truncated or corrupt container fails here, on the executor, with the file named.
    """
    import json

    with staging.open_input(path) as fo:
        try:
            reader = fastavro.block_reader(fo)
            schema = reader.writer_schema
            records = sum(block.num_records for block in reader)
        except Exception as exc:  # fastavro raises ValueError, EOFError, zlib.error, ...
            raise CorruptFileError(f"not a valid Avro container ({type(exc).__name__}: {exc})") from None
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    fingerprint = fastavro.schema.fingerprint(canonical, "SHA-256")
    return fingerprint, json.dumps(schema, sort_keys=True), records


def _stream_to(session: requests.Session, url: str, dest: str, settings: DownloadSettings) -> tuple[int, int, str]:
    """GET ``url`` into ``dest``; returns (HTTP status, bytes, sha256). Raises _Truncated."""
    part = dest + ".part"
    with session.get(url, stream=True, timeout=settings.http.timeout) as resp:
        if resp.status_code != 200:
            return resp.status_code, 0, ""
        # With a Content-Encoding the length counts encoded bytes; iter_content decodes them.
        encoded = resp.headers.get("Content-Encoding", "identity").lower() != "identity"
        expected = None if encoded else resp.headers.get("Content-Length")
        if expected is not None and int(expected) > settings.max_bytes:
            raise UnsafeInputError(
                f"Content-Length {expected} exceeds max_download_bytes={settings.max_bytes}"
            )
        digest = hashlib.sha256()
        size = 0
        with staging.open_output(part) as out:
            # iter_content turns a cut-off body into ChunkedEncodingError/ConnectionError.
            for chunk in resp.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > settings.max_bytes:
                    raise UnsafeInputError(f"download exceeds max_download_bytes={settings.max_bytes}")
                digest.update(chunk)
                out.write(chunk)
                failpoints.hit("mid_download")
        if expected is not None and size != int(expected):
            raise _Truncated(f"body has {size} of {expected} bytes")
    staging.replace(part, dest)
    return 200, size, digest.hexdigest()


def download_one(entry: dict[str, Any], settings: DownloadSettings, session: requests.Session) -> dict[str, Any]:
    """Download one entry (page_seq, file_index, name, url, path) and return its manifest row."""
    row: dict[str, Any] = {
        "page_seq": entry["page_seq"],
        "file_index": entry["file_index"],
        "name": entry["name"],
        "path": entry["path"],
        "bytes": 0,
        "sha256": None,
        "schema_fingerprint": None,
        "writer_schema": None,
        "records": 0,
        "attempts": 0,
        "http_status": 0,
        "status": STATUS_FAILED,
        "error": None,
    }
    url = entry["url"]
    try:
        check_url_allowed(url, "download URL")
        staging.make_dirs(os.path.dirname(entry["path"]))
        retrying = Retrying(
            stop=stop_after_attempt(settings.attempts),
            wait=wait_exponential_jitter(initial=0.2, max=5.0),
            retry=retry_if_exception_type(
                (_Truncated, CorruptFileError, requests.ConnectionError, requests.Timeout,
                 requests.exceptions.ChunkedEncodingError)
            ),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                row["attempts"] = attempt.retry_state.attempt_number
                status, size, sha = _stream_to(session, url, entry["path"], settings)
                row["http_status"] = status
                if status in EXPIRED_STATUSES:
                    row["status"] = STATUS_EXPIRED
                    return row
                if status != 200:
                    row["error"] = f"storage answered HTTP {status}"
                    return row
                fingerprint, schema_json, records = avro_summary(entry["path"])
        row.update(bytes=size, sha256=sha, schema_fingerprint=fingerprint,
                   writer_schema=schema_json, records=records, status=STATUS_OK)
    except RetryError as exc:  # pragma: no cover - reraise=True makes this unreachable
        row["error"] = f"gave up: {exc.last_attempt.exception()!r}"
    except (_Truncated, CorruptFileError, UnsafeInputError) as exc:
        row["error"] = str(exc)
    except requests.RequestException as exc:
        # requests' own messages contain the signed URL: keep only the class and the safe URL.
        row["error"] = f"{type(exc).__name__} while fetching {redact_url(url)}"
    except OSError as exc:
        row["error"] = f"cannot write staging file: {exc.strerror}"
    if row["status"] != STATUS_OK:
        _remove_quietly(entry["path"] + ".part")
        _remove_quietly(entry["path"])
    return row


def _remove_quietly(path: str) -> None:
    staging.remove_file(path)


def download_all(entries: list[dict[str, Any]], settings: DownloadSettings) -> Iterator[dict[str, Any]]:
    """Download several entries with a few threads (downloads are I/O bound) and one session."""
    session = _session(settings)
    seen_schemas: set[str] = set()
    try:
        with ThreadPoolExecutor(max_workers=max(1, settings.threads_per_task)) as pool:
            for row in pool.map(lambda e: download_one(e, settings, session), entries):
                # Ship each distinct writer schema once per task, not once per file.
                fp = row["schema_fingerprint"]
                if fp in seen_schemas:
                    row["writer_schema"] = None
                elif fp is not None:
                    seen_schemas.add(fp)
                yield row
    except Exception as exc:
        # Whatever escapes here becomes a PythonException whose text Spark logs and sends to the
        # driver: drop the chained traceback and scrub the message so no signed URL travels.
        raise DownloadError(
            f"download task failed unexpectedly: {type(exc).__name__}: {scrub(str(exc))}"
        ) from None
    finally:
        session.close()
