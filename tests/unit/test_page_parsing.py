"""The page endpoint's answer is validated strictly; errors name the page and what was wrong."""

from __future__ import annotations

import json

import pytest

from repo361_ingest.api import parse_page
from repo361_ingest.errors import PageFormatError, UnsafeInputError


def body(**doc) -> bytes:
    return json.dumps(doc).encode()


def test_documented_page_parses() -> None:
    page = parse_page(
        body(continuationToken="abc", format="avro", expiryHours=1,
             files=[{"name": "conversations_detail_without_attributes_001", "url": "https://s.example/f?sig=1"}]),
        "prev", "page 7",
    )
    assert page.request_token == "prev" and page.next_token == "abc"
    assert [f.name for f in page.files] == ["conversations_detail_without_attributes_001"]
    assert page.files[0].safe_url == "https://s.example/f"
    assert "sig=" not in repr(page)


@pytest.mark.parametrize("token", [None, ""])
def test_null_or_empty_token_is_no_next_token(token) -> None:
    assert parse_page(body(continuationToken=token, files=[]), "t", "page 1").next_token is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>busy</html>", "page 3: page is not JSON"),
        (b"[1, 2]", "page 3: page is a JSON list, expected an object"),
        (body(format="parquet", files=[]), "page 3: page format is 'parquet', expected 'avro'"),
        (body(continuationToken=5, files=[]), "page 3: continuationToken is a int, expected a string"),
        (body(files={"a": 1}), "page 3: 'files' is a dict, expected a list"),
        (body(files=[{"name": "x"}]), "page 3: file 'x' has no 'url'"),
        (body(files=[{"url": "https://s/x"}]), r"page 3: files\[0\] has no usable 'name'"),
    ],
)
def test_bad_pages_fail_naming_the_page(raw: bytes, message: str) -> None:
    with pytest.raises(PageFormatError, match=message):
        parse_page(raw, "t", "page 3")


def test_plain_http_download_url_off_loopback_is_refused() -> None:
    raw = body(files=[{"name": "f1", "url": "http://storage.example/f1?sig=SECRET"}])
    with pytest.raises(UnsafeInputError) as err:
        parse_page(raw, "t", "page 2")
    assert "file 'f1'" in str(err.value) and "SECRET" not in str(err.value)


def test_plain_http_to_loopback_is_allowed_for_the_emulator() -> None:
    raw = body(files=[{"name": "f1", "url": "http://127.0.0.1:8123/files/f1?sig=x"}])
    assert parse_page(raw, "t", "page 2").files[0].name == "f1"
