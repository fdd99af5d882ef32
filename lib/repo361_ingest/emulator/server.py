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
from typing import TYPE_CHECKING, Any, BinaryIO
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
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self._record(body, status)

    def send_stream(self, status: int, fo: BinaryIO, size: int, send: int,
                    bandwidth: float | None) -> None:
        """Send ``send`` of ``size`` bytes (less = cut off body), paced to ``bandwidth``."""
        self._delay()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        if send < size:
            self.send_header("Connection", "close")
        self.end_headers()
        self._record(b"", status)
        started, sent = time.monotonic(), 0
        while sent < send:
            chunk = fo.read(min(CHUNK, send - sent))
            if not chunk:
                break
            self.wfile.write(chunk)
            sent += len(chunk)
            if bandwidth:
                ahead = sent / bandwidth - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
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
