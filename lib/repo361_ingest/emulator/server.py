"""HTTP handlers of the emulator: token, page and file-download endpoints on loopback.

Real sockets (``ThreadingHTTPServer``) rather than mocks, because the job downloads on Spark
executors, which are other processes. HTTP/1.1 with Content-Length everywhere so clients reuse
connections as they would against the real API; a cut-off body closes the connection.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, BinaryIO, Callable
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from .core import Emulator

CHUNK = 256 * 1024


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it (tests assert on headers, e.g. no Authorization)."""

    server: str  # "api" | "storage"
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int
    ts: float


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A server that knows its emulator and its role."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: "Emulator", role: str) -> None:
        super().__init__(address, Handler)
        self.emulator = emulator
        self.role = role


class Handler(BaseHTTPRequestHandler):
    """Routes to the emulator; records every request in the emulator's request log."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body waits for
    # the client's delayed ACK of the headers: +40 ms on every keep-alive request (measured 44 ms
    # per page at zero latency). Real API front ends send without that stall.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence stderr access logs; the request log is the record."""

    # ---- plumbing ------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, body: bytes, status: int) -> None:
        split = urlsplit(self.path)
        self.server.emulator._append_log(RequestRecord(
            server=self.server.role, method=self.command, path=split.path, query=split.query,
            headers={k: v for k, v in self.headers.items()}, body=body, status=status,
            ts=time.time()))

    def _delay(self) -> None:
        latency = self.server.emulator.faults.latency_ms
        if latency:
            time.sleep(latency / 1000)

    def send_json(self, status: int, payload: Any, body: bytes = b"",
                  headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self._delay()
        self._record(body, status)  # before any byte: the client cannot outrun the log
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, status: int, fo: BinaryIO, size: int, send: int,
                    bandwidth: float | None, count: Callable[[int], None]) -> None:
        """Send ``send`` of ``size`` bytes (less = cut off body), paced to ``bandwidth``.

        A complete body is counted (``count(+1)``) just before its last bytes go out, so a
        client never sees the whole file before the count does; a failed last write undoes it.
        """
        self._delay()
        self._record(b"", status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        if send < size:
            self.send_header("Connection", "close")
        self.end_headers()
        # pace before each write so the client receives the last byte at size/bandwidth
        chunk_size = CHUNK if not bandwidth else int(min(CHUNK, max(4096, bandwidth / 20)))
        started, sent = time.monotonic(), 0
        while sent < send:
            chunk = fo.read(min(chunk_size, send - sent))
            if not chunk:
                break
            if bandwidth:
                ahead = (sent + len(chunk)) / bandwidth - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            last = send == size and sent + len(chunk) >= size
            if last:
                count(1)
            try:
                self.wfile.write(chunk)
            except OSError:
                if last:
                    count(-1)
                raise
            sent += len(chunk)
        if size == 0 and send == 0:
            count(1)
        self.wfile.flush()
        if send < size:
            self.close_connection = True

    # ---- verbs ---------------------------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self._read_body()
        path = urlsplit(self.path).path
        emu = self.server.emulator
        if self.server.role != "api":
            self.send_json(404, {"error": "not found"}, body)
        elif path == "/security/oauth2/token":
            emu._handle_token(self, body)
        elif path == "/rawdata/export/page":
            emu._handle_page(self, body)
        else:
            self.send_json(404, {"error": f"no route {path}"}, body)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        split = urlsplit(self.path)
        emu = self.server.emulator
        if split.path.startswith("/files/"):
            emu._handle_download(self, split.path, parse_qs(split.query))
        else:
            self.send_json(404, {"error": f"no route {split.path}"})
