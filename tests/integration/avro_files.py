"""Serve extra Avro files (written by fastavro in a test) on export pages of the emulator.

A tiny HTTP file server on loopback holds the files; the emulator's ``page_hook`` adds them to the
chosen pages, next to the emulator's own files, so the job downloads them like any other file.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fastavro

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def write_avro(path: Path, schema: dict, records: list[dict], codec: str = "null") -> Path:
    """A real Avro container written by fastavro (names are not validated: odd names allowed)."""
    with open(path, "wb") as fo:
        fastavro.writer(fo, schema, records, codec=codec)
    return path


def ms(value: Any) -> int | None:
    """Epoch milliseconds of an emulator instant (ISO-8601 string or aware datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (value - EPOCH) // dt.timedelta(milliseconds=1)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class FileServer:
    """Serves ``root`` on 127.0.0.1 (plain http on loopback is allowed by the job)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_Quiet, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, file_name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{quote(file_name)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FileServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def add_files(emu, server: FileServer, extra: dict[int, list[tuple[str, str]]], replace: bool = False) -> None:
    """Page index -> [(name the API lists, file in the server's root)] appended to that page
    (or, with ``replace``, instead of the emulator's own files of that page)."""

    def hook(index: int, payload: dict[str, Any]) -> dict[str, Any]:
        files = [] if replace and index in extra else list(payload.get("files") or [])
        for name, file_name in extra.get(index, []):
            files.append({"name": name, "url": server.url(file_name)})
        return {**payload, "files": files}

    emu.faults.page_hook = hook
