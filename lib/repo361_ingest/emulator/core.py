"""The :class:`Emulator`: a seeded Repo361 export on loopback, used by tests, demo and benchmark.

State that changes at run time (published pages, issued tokens, request log, download counts) is
guarded by one lock; file generation has a lock per file so parallel downloads of different files
generate in parallel while a file is still written exactly once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections import Counter
from pathlib import Path
from typing import Any, Collection, Iterator
from urllib.parse import parse_qs, quote, urlencode

from .data import ConversationFactory, conversation_id
from .faults import HOSTILE_NAMES, Faults
from .layout import FileSpec, PageSpec, plan_page, split_evenly
from .server import EmulatorHTTPServer, Handler, RequestRecord

END_STYLES = ("same_token", "null_token", "empty_page")


class Emulator:
    """A fake Repo361 raw-data export API with real HTTP servers (API + storage) on loopback.

    ``conversations`` are spread evenly over ``pages`` -> ``files_per_page`` files ->
    ``records_per_file`` Avro records (each record's ``Entities`` holds several conversations).
    ``empty_files={(page, file)}`` gives zero-record files and ``empty_records={(page, file,
    record)}`` records with an empty ``Entities``; their share moves to the other files/records.
    Same arguments -> same bytes. Files are generated on first use into a temp folder owned by
    the emulator (removed by :meth:`stop`) and streamed from disk.

    ``end_style`` (DESIGN §5): ``same_token`` | ``null_token`` | ``empty_page``. Download URLs
    point at the storage server, or with ``storage_redirect=True`` at the API, which answers 302
    to storage. ``codec``: ``null`` (fastest, default) or ``deflate``. Faults: :attr:`faults`.

    Usage::

        with Emulator(conversations=120, pages=4) as emu:
            run_job(token_url=emu.token_url, api_base_url=emu.api_base_url,
                    client_id=emu.client_id, client_secret=emu.client_secret)
            assert ingested_ids == emu.conversation_ids()
    """

    def __init__(
        self,
        conversations: int = 120,
        pages: int = 4,
        files_per_page: int = 2,
        records_per_file: int = 3,
        seed: int = 7,
        end_style: str = "same_token",
        schema_version: int = 1,
        timestamps: str = "iso",
        host: str = "127.0.0.1",
        port: int = 0,
        storage_redirect: bool = False,
        client_id: str = "emu-client",
        client_secret: str = "emu-secret-do-not-use",
        token_ttl_seconds: float = 3600,
        url_ttl_seconds: float = 3600,
        latency_ms: float = 0,
        bandwidth_bytes_per_s: float | None = None,
        empty_files: Collection[tuple[int, int]] = (),
        empty_records: Collection[tuple[int, int, int]] = (),
        codec: str = "null",
        storage_port: int = 0,
        work_dir: str | Path | None = None,
    ) -> None:
        if end_style not in END_STYLES:
            raise ValueError(f"end_style must be one of {END_STYLES}, got {end_style!r}")
        if pages < 1 or conversations < 0:
            raise ValueError("pages must be >= 1 and conversations >= 0")
        if codec not in ("null", "deflate"):
            raise ValueError(f"codec must be 'null' or 'deflate', got {codec!r}")
        self.seed = seed
        self.end_style = end_style
        self.files_per_page = files_per_page
        self.records_per_file = records_per_file
        self.host, self.port, self.storage_port = host, port, storage_port
        self.storage_redirect = storage_redirect
        self.client_id, self.client_secret = client_id, client_secret
        self.token_ttl_seconds, self.url_ttl_seconds = token_ttl_seconds, url_ttl_seconds
        self.faults = Faults(latency_ms=latency_ms, bandwidth_bytes_per_s=bandwidth_bytes_per_s)
        self.factory = ConversationFactory(seed, schema_version, timestamps, codec)
        self._empty_files = set(empty_files)
        self._empty_records = set(empty_records)
        self._per_page = max(1, round(conversations / pages)) if conversations else 0
        self._lock = threading.Lock()
        self._pages: list[PageSpec] = []
        self._next_conversation = 0
        self._tokens: dict[str, float] = {}
        self._requests: list[RequestRecord] = []
        self._downloads: Counter[str] = Counter()
        self._file_locks: dict[tuple[int, int], threading.Lock] = {}
        self._key = hashlib.sha256(f"emulator-signing:{seed}".encode()).digest()
        self._own_dir = work_dir is None
        self._dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="repo361-emu-"))
        self._servers: list[EmulatorHTTPServer] = []
        if self._own_dir:  # also cleaned when a test forgets stop()
            weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        for count in split_evenly(conversations, pages):
            self._publish(count)

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "Emulator":
        """Bind the API and storage servers and serve them from daemon threads."""
        if self._servers:
            return self
        for role, port in (("api", self.port), ("storage", self.storage_port)):
            server = EmulatorHTTPServer((self.host, port), self, role)
            threading.Thread(target=server.serve_forever, args=(0.05,), name=f"repo361-emu-{role}",
                             daemon=True).start()
            self._servers.append(server)
        self.port = self._servers[0].server_address[1]
        self.storage_port = self._servers[1].server_address[1]
        return self

    def stop(self) -> None:
        """Stop serving and delete generated files (only the folder the emulator created)."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- public read-only view -----------------------------------------------------------------

    @property
    def api_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def storage_base_url(self) -> str:
        return f"http://{self.host}:{self.storage_port}"

    @property
    def token_url(self) -> str:
        return f"{self.api_base_url}/security/oauth2/token"

    @property
    def page_count(self) -> int:
        with self._lock:
            return len(self._pages)

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def issued_tokens(self) -> list[str]:
        """Every access token the token endpoint has issued (tests search logs for them)."""
        with self._lock:
            return list(self._tokens)

    def revoke_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on; new ones work."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = float("-inf")

    def clear_request_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def download_count(self, name: str) -> int:
        """Complete (not cut-off) 200 responses for file ``name`` (canonical or served name)."""
        with self._lock:
            return self._downloads[self._canonical(name)]

    def pages(self) -> list[PageSpec]:
        with self._lock:
            return list(self._pages)

    def files(self) -> list[FileSpec]:
        return [f for page in self.pages() for f in page.files]

    def file_names(self) -> list[str]:
        return [f.name for f in self.files()]

    def conversation_ids(self) -> set[str]:
        with self._lock:
            total = self._next_conversation
        return {conversation_id(self.seed, i) for i in range(total)}

    def conversations(self) -> Iterator[dict[str, Any]]:
        """Every published conversation, in page/file/record order, exactly as in the Avro."""
        for spec in self.files():
            yield from self.factory.conversations(spec)

    def file_path(self, name: str) -> Path:
        """Local path of file ``name``, generating it if needed (the benchmark's floor input)."""
        for spec in self.files():
            if spec.name == self._canonical(name):
                return self._ensure_file(spec)
        raise KeyError(name)

    def add_pages(self, n: int, conversations: int | None = None) -> list[PageSpec]:
        """Publish ``n`` more pages with new conversation ids, reachable from stored tokens."""
        total = self._per_page * n if conversations is None else conversations
        return [self._publish(count) for count in split_evenly(total, n)]

    # ---- internals: layout, files, tokens ------------------------------------------------------

    def _publish(self, count: int) -> PageSpec:
        with self._lock:
            page = plan_page(len(self._pages), self._next_conversation, count, self.files_per_page,
                             self.records_per_file, self._empty_files, self._empty_records)
            self._pages.append(page)
            self._next_conversation += count
            for f in page.files:
                self._file_locks[(f.page, f.index)] = threading.Lock()
            return page

    def _append_log(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _ensure_file(self, spec: FileSpec) -> Path:
        path = self._dir / f"p{spec.page:05d}_f{spec.index:04d}.avro"
        if path.exists():
            return path
        with self._file_locks[(spec.page, spec.index)]:
            if not path.exists():
                self.factory.write_file(spec, path)
        return path

    def _corrupt_file(self, spec: FileSpec) -> Path:
        """A copy with a broken sync marker (or magic, for a file with no blocks)."""
        good = self._ensure_file(spec)
        bad = good.with_suffix(".corrupt")
        if not bad.exists():
            data = bytearray(good.read_bytes())
            if spec.records:  # at least one block: break the last sync marker
                data[-16:] = bytes(b ^ 0xFF for b in data[-16:])
            else:
                data[0:4] = b"NotA"
            bad.write_bytes(bytes(data))
        return bad

    def served_name(self, spec: FileSpec) -> str:
        if not self.faults.hostile_names:
            return spec.name
        k = spec.page * self.files_per_page + spec.index
        base = HOSTILE_NAMES[k % len(HOSTILE_NAMES)]
        return base if k < len(HOSTILE_NAMES) else f"{base}_{k}"

    def _canonical(self, name: str) -> str:
        for spec in (f for page in self._pages for f in page.files):
            if name in (spec.name, self.served_name(spec)):
                return spec.name
        return name

    def _encode_token(self, page: int) -> str:
        mac = hmac.new(self._key, f"page:{page}".encode(), "sha256").hexdigest()[:16]
        return base64.urlsafe_b64encode(f"{page}.{mac}".encode()).decode().rstrip("=")

    def _decode_token(self, token: str) -> int | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            page_s, mac = raw.split(".", 1)
            page = int(page_s)
        except (ValueError, UnicodeDecodeError):
            return None
        return page if hmac.compare_digest(self._encode_token(page), token) and page >= 0 else None

    def _sign(self, page: int, index: int, expires: int, gen: int) -> str:
        msg = f"{page}/{index}|{expires}|{gen}".encode()
        return hmac.new(self._key, msg, "sha256").hexdigest()[:32]

    def _file_url(self, spec: FileSpec) -> str:
        expires = int(time.time() + self.url_ttl_seconds)
        gen = self.faults.generation
        query = urlencode({"expires": expires, "gen": gen,
                           "sig": self._sign(spec.page, spec.index, expires, gen)})
        base = self.api_base_url if self.storage_redirect else self.storage_base_url
        # Dots encoded too: a ".." name must not become a dot segment that clients normalise away.
        name = quote(self.served_name(spec), safe="").replace(".", "%2E")
        return f"{base}/files/{spec.page}/{spec.index}/{name}?{query}"

    # ---- handlers (called from server threads) ------------------------------------------------

    def _handle_token(self, h: Handler, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            h.send_json(400, {"error": "unsupported_grant_type"}, body)
            return
        if not (hmac.compare_digest(form.get("client_id", ""), self.client_id)
                and hmac.compare_digest(form.get("client_secret", ""), self.client_secret)):
            h.send_json(401, {"error": "invalid_client"}, body)
            return
        token = "emu-at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic()
        h.send_json(200, {"access_token": token, "token_type": "bearer",
                          "expires_in": int(self.token_ttl_seconds)}, body)

    def _authorized(self, h: Handler) -> bool:
        auth = h.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return False
        with self._lock:
            issued = self._tokens.get(auth[7:].strip())
        if issued is None:
            return False
        age = time.monotonic() - issued
        max_age = self.faults.token_max_age_s
        return age <= self.token_ttl_seconds and (max_age is None or age <= max_age)

    def _handle_page(self, h: Handler, body: bytes) -> None:
        if not self._authorized(h):
            h.send_json(401, {"error": "invalid_token"}, body)
            return
        faults = self.faults
        if faults.take("page_429"):
            h.send_json(429, {"error": "rate limited"}, body,
                        headers={"Retry-After": str(faults.retry_after_s)})
            return
        if faults.take("page_5xx"):
            h.send_json(faults.page_5xx_status, {"error": "transient"}, body)
            return
        try:
            request = json.loads(body or b"{}")
            token = request.get("continuationToken")
            fmt = request.get("format")
        except (ValueError, AttributeError):
            h.send_json(400, {"error": "body must be a JSON object"}, body)
            return
        if fmt != "avro":
            h.send_json(400, {"error": f"unsupported format {fmt!r}"}, body)
            return
        if token in (None, ""):
            index: int | None = 0
        elif isinstance(token, str):
            index = self._decode_token(token)
        else:
            index = None
        if index is None:
            h.send_json(400, {"error": "invalid continuationToken"}, body)
            return
        if index in faults.failing_pages:
            h.send_json(500, {"error": f"internal error on page {index}"}, body)
            return
        if faults.take("malformed_json"):
            h.send_json(200, None, body, raw=b'{"continuationToken": "abc", "files": [')
            return
        payload = self._page_payload(index, token)
        if faults.take("wrong_format"):
            payload["format"] = "parquet"
        if faults.page_hook is not None:
            payload = faults.page_hook(index, payload)
        h.send_json(200, payload, body)

    def _page_payload(self, index: int, token: str | None) -> dict[str, Any]:
        """The page answer for a request token, per the configured end-of-data style."""
        with self._lock:
            pages = list(self._pages)
        total = len(pages)
        next_token: str | None
        if index < total:
            page = pages[index]
            files = [{"name": self.served_name(f), "url": self._file_url(f)} for f in page.files]
            last = index == total - 1
            next_token = None if (last and self.end_style == "null_token") \
                else self._encode_token(index + 1)
        else:
            files = []
            # past the end: same_token repeats the request token; the others answer null
            next_token = token if self.end_style == "same_token" else None
        return {"continuationToken": next_token, "files": files, "format": "avro",
                "expiryHours": max(1, round(self.url_ttl_seconds / 3600))}

    def _handle_download(self, h: Handler, path: str, query: dict[str, list[str]]) -> None:
        parts = path.split("/")  # "", "files", page, index, name
        spec = None
        try:
            page, index = int(parts[2]), int(parts[3])
            expires, gen = int(query["expires"][0]), int(query["gen"][0])
            sig = query["sig"][0]
            with self._lock:
                spec = self._pages[page].files[index]
        except (IndexError, KeyError, ValueError):
            h.send_json(404, {"error": "no such file"})
            return
        if not hmac.compare_digest(sig, self._sign(page, index, expires, gen)) \
                or expires < time.time() or gen < self.faults.url_min_generation:
            h.send_json(403, {"error": "signature invalid or expired"})
            return
        if h.server.role == "api":
            if self.storage_redirect:
                h._delay()
                h._record(b"", 302)
                h.send_response(302)
                h.send_header("Location", f"{self.storage_base_url}{h.path}")
                h.send_header("Content-Length", "0")
                h.end_headers()
            else:
                h.send_json(404, {"error": "files are served by storage"})
            return
        if self.faults.take("download_5xx"):
            h.send_json(self.faults.download_5xx_status, {"error": "transient"})
            return
        file_path = self._corrupt_file(spec) if spec.name in self.faults.corrupt \
            else self._ensure_file(spec)
        size = file_path.stat().st_size
        cut = self.faults.take_truncate(spec.name)
        def count(delta: int) -> None:
            with self._lock:
                self._downloads[spec.name] += delta

        with open(file_path, "rb") as fo:
            h.send_stream(200, fo, size, size // 2 if cut else size,
                          self.faults.bandwidth_bytes_per_s, count)
