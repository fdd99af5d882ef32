"""Each fault appears when asked, exactly as often as asked, and never otherwise."""

from __future__ import annotations

import http.client
import io
import time
from urllib.parse import urlsplit

import fastavro
import pytest
import requests
from emu_client import Client

from repo361_ingest.emulator import Emulator


def _statuses(client: Client, n: int) -> list[int]:
    return [client.page_response(None).status_code for _ in range(n)]


def test_no_faults_by_default(client: Client) -> None:
    assert _statuses(client, 3) == [200, 200, 200]
    body = client.page(None)
    for f in body["files"]:
        fastavro.reader(io.BytesIO(client.download(f["url"])))


def test_429_with_retry_after_on_next_n_pages(client: Client) -> None:
    client.emu.faults.rate_limit_pages(2, retry_after_s=3)
    first = client.page_response(None)
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert _statuses(client, 2) == [429, 200]


def test_transient_5xx_on_pages_and_downloads(client: Client) -> None:
    client.emu.faults.fail_pages(1, status=502)
    assert _statuses(client, 2) == [502, 200]
    url = client.page(None)["files"][0]["url"]
    client.emu.faults.fail_downloads(2)
    assert [requests.get(url, timeout=10).status_code for _ in range(3)] == [503, 503, 200]
    assert client.emu.download_count(client.emu.files()[0].name) == 1


def test_token_older_than_n_seconds_gets_401(client: Client) -> None:
    client.emu.faults.expire_tokens_older_than(0.2)
    assert client.page_response(None).status_code == 200
    time.sleep(0.3)
    assert client.page_response(None).status_code == 401
    client.token = client.new_token()
    assert client.page_response(None).status_code == 200


def test_expired_urls_until_page_requested_again(client: Client) -> None:
    old = client.page(None)["files"][0]["url"]
    client.emu.faults.expire_urls()
    assert requests.get(old, timeout=10).status_code == 403
    fresh = client.page(None)["files"][0]["url"]
    assert fresh != old
    assert requests.get(fresh, timeout=10).status_code == 200
    assert requests.get(old, timeout=10).status_code == 403


def _raw_get(url: str) -> tuple[int, int, bytes]:
    """(status, Content-Length, body bytes actually received) without client-side checks."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", f"{u.path}?{u.query}")
    resp = conn.getresponse()
    length = int(resp.headers["Content-Length"])
    data = b""
    try:
        while chunk := resp.fp.read1(65536) if resp.fp else b"":
            data += chunk
    finally:
        conn.close()
    return resp.status, length, data


def test_cut_off_body_first_k_times(client: Client) -> None:
    name = client.emu.files()[1].name
    client.emu.faults.truncate_file(name, times=1)
    url = client.page(None)["files"][1]["url"]
    status, length, data = _raw_get(url)
    assert status == 200 and len(data) == length // 2 < length
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.emu.faults.truncate_file(name, times=1)
        requests.get(url, timeout=10)
    full = client.download(url)
    assert len(full) == length
    assert client.emu.download_count(name) == 1


def test_corrupt_file_only_for_that_file(client: Client) -> None:
    files = client.page(None)["files"]
    client.emu.faults.corrupt_file(files[0]["name"])
    bad = client.download(files[0]["url"])
    with pytest.raises(Exception):
        list(fastavro.reader(io.BytesIO(bad)))
    good = client.download(files[1]["url"])
    assert len(list(fastavro.reader(io.BytesIO(good)))) == 2
    client.emu.faults.reset()
    assert list(fastavro.reader(io.BytesIO(client.download(files[0]["url"]))))


def test_permanent_500_on_one_page(client: Client) -> None:
    client.emu.faults.fail_page_permanently(1)
    second = client.page(None)["continuationToken"]
    assert [client.page_response(second).status_code for _ in range(3)] == [500, 500, 500]
    assert client.page_response(None).status_code == 200
    client.emu.faults.reset()
    assert client.page_response(second).status_code == 200


def test_malformed_json_and_wrong_format(client: Client) -> None:
    client.emu.faults.malformed_page(1)
    r = client.page_response(None)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    client.emu.faults.wrong_format_page(1)
    assert client.page(None)["format"] == "parquet"
    assert client.page(None)["format"] == "avro"


def test_hostile_names_still_download(client: Client) -> None:
    client.emu.faults.hostile_names = True
    files = client.page(None)["files"]
    assert [f["name"] for f in files] == ["../../etc/x", "/tmp/absolute name"]
    assert len(client.download(files[0]["url"])) > 100
    assert client.emu.download_count("../../etc/x") == 1
    client.emu.faults.reset()
    assert client.page(None)["files"][0]["name"] == "conversations_detail_without_attributes_001"


def test_latency_and_bandwidth() -> None:
    with Emulator(conversations=200, pages=1, files_per_page=1, latency_ms=150,
                  bandwidth_bytes_per_s=1_000_000) as emu:
        c = Client(emu)
        t0 = time.monotonic()
        url = c.page(None)["files"][0]["url"]
        assert time.monotonic() - t0 >= 0.15
        t0 = time.monotonic()
        size = len(c.download(url))
        elapsed = time.monotonic() - t0
        assert size > 300_000
        assert elapsed >= 0.15 + size / 1_000_000 * 0.9
        emu.faults.reset()
        t0 = time.monotonic()
        c.download(url)
        assert time.monotonic() - t0 < 0.1
