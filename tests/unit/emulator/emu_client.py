"""A tiny real HTTP client for the emulator (no mocks: real loopback sockets)."""

from __future__ import annotations

import io
from typing import Any, Iterator

import fastavro
import requests

from repo361_ingest.emulator import Emulator

PAGE_PATH = "/rawdata/export/page"


class Client:
    """Walks the emulator the way the job does, with plain ``requests``."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.http = requests.Session()
        self.token = self.new_token()

    def new_token(self) -> str:
        r = self.http.post(self.emu.token_url, data={
            "client_id": self.emu.client_id, "client_secret": self.emu.client_secret,
            "grant_type": "client_credentials"}, timeout=10)
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def page_response(self, token: str | None, fmt: str = "avro",
                      bearer: str | None = None) -> requests.Response:
        return self.http.post(self.emu.api_base_url + PAGE_PATH,
                              json={"continuationToken": token, "format": fmt},
                              headers={"Authorization": f"Bearer {bearer or self.token}"},
                              timeout=10)

    def page(self, token: str | None) -> dict[str, Any]:
        r = self.page_response(token)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def download(self, url: str) -> bytes:
        r = requests.get(url, timeout=10)  # no Authorization: pre-signed URL
        assert r.status_code == 200, (r.status_code, r.text)
        return r.content

    def walk(self, token: str | None, max_pages: int = 100) -> tuple[list[str], str | None]:
        """Follow pages per DESIGN §5; returns (file names, last non-null token)."""
        names: list[str] = []
        stored = token
        for _ in range(max_pages):
            body = self.page(token)
            names += [f["name"] for f in body["files"]]
            nxt = body["continuationToken"]
            if nxt:
                stored = nxt
            if not body["files"] and (not nxt or nxt == token):
                return names, stored
            if nxt is None:
                return names, stored
            token = nxt
        raise AssertionError("did not reach the end of the export")

    def conversations(self, url: str) -> list[dict[str, Any]]:
        return entities(self.download(url))


def entities(avro_bytes: bytes) -> list[dict[str, Any]]:
    return [c for rec in fastavro.reader(io.BytesIO(avro_bytes)) for c in rec["Entities"]]
