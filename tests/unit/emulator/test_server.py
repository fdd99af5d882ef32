"""Endpoints over real loopback HTTP: auth, paging, end-of-data styles, add_pages, URLs, log."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from repo361_ingest.emulator import Emulator

from emu_client import PAGE_PATH, Client

ALL_NAMES = [f"conversations_detail_without_attributes_{i:03d}" for i in range(1, 7)]


def test_token_endpoint_checks_credentials(emu: Emulator) -> None:
    good = {"client_id": emu.client_id, "client_secret": emu.client_secret,
            "grant_type": "client_credentials"}
    r = requests.post(emu.token_url, data=good, timeout=10)
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer" and r.json()["expires_in"] == 3600
    bad = dict(good, client_secret="wrong")
    assert requests.post(emu.token_url, data=bad, timeout=10).status_code == 401
    assert emu.token_url == emu.api_base_url + "/security/oauth2/token"


def test_page_needs_a_valid_bearer(client: Client) -> None:
    url = client.emu.api_base_url + PAGE_PATH
    assert requests.post(url, json={"continuationToken": None, "format": "avro"},
                         timeout=10).status_code == 401
    assert client.page_response(None, bearer="forged").status_code == 401
    assert client.page_response(None).status_code == 200


def test_expired_access_token_is_refused() -> None:
    with Emulator(conversations=4, pages=1, token_ttl_seconds=0.2) as emu:
        c = Client(emu)
        assert c.page_response(None).status_code == 200
        time.sleep(0.3)
        assert c.page_response(None).status_code == 401


def test_walk_serves_every_conversation_once(client: Client) -> None:
    names, _ = client.walk(None)
    assert names == ALL_NAMES
    got = []
    body_urls = []
    token = None
    while True:
        body = client.page(token)
        if not body["files"]:
            break
        assert body["format"] == "avro" and body["expiryHours"] == 1
        body_urls += [f["url"] for f in body["files"]]
        token = body["continuationToken"]
    for url in body_urls:
        got += client.conversations(url)
    assert [c["ConversationId"] for c in got] == [
        c["ConversationId"] for c in client.emu.conversations()]
    assert {c["ConversationId"] for c in got} == client.emu.conversation_ids()
    assert len(got) == 24


def test_continuation_tokens_are_opaque_and_validated(client: Client) -> None:
    token = client.page(None)["continuationToken"]
    assert not token.isdigit() and "1" != token
    forged = base64.urlsafe_b64encode(b"2.0000000000000000").decode().rstrip("=")
    assert client.page_response(forged).status_code == 400
    assert client.page_response("3").status_code == 400
    assert client.page_response(None, fmt="json").status_code == 400


@pytest.mark.parametrize("style", ["same_token", "null_token", "empty_page"])
def test_end_styles_and_add_pages(style: str) -> None:
    with Emulator(conversations=24, pages=3, files_per_page=2, records_per_file=2, seed=11,
                  end_style=style) as emu:
        c = Client(emu)
        first, stored = c.walk(None)
        assert first == ALL_NAMES
        # what the final answers look like per style
        last_page = c.page(stored)
        if style == "same_token":
            assert last_page == {"continuationToken": stored, "files": [], "format": "avro",
                                 "expiryHours": 1}
        elif style == "null_token":
            assert [f["name"] for f in last_page["files"]] == ALL_NAMES[4:]
            assert last_page["continuationToken"] is None
        else:
            assert last_page["files"] == [] and last_page["continuationToken"] is None
        again, stored_again = c.walk(stored)
        assert again == (ALL_NAMES[4:] if style == "null_token" else [])
        assert stored_again == stored
        old_ids = emu.conversation_ids()
        emu.add_pages(2)
        assert emu.page_count == 5
        more, newest = c.walk(stored)
        new_names = [f"conversations_detail_without_attributes_{i:03d}" for i in range(7, 11)]
        assert more == (ALL_NAMES[4:] if style == "null_token" else []) + new_names
        assert newest != stored
        new_ids = emu.conversation_ids() - old_ids
        assert len(new_ids) == 16 and not (new_ids & old_ids)
        tail, _ = c.walk(newest)
        assert tail == (new_names[2:] if style == "null_token" else [])


def test_add_pages_with_explicit_conversation_count(emu: Emulator) -> None:
    pages = emu.add_pages(1, conversations=5)
    assert sum(f.conversation_count for f in pages[0].files) == 5
    assert len(emu.conversation_ids()) == 29


def test_download_urls_are_presigned(client: Client) -> None:
    url = client.page(None)["files"][0]["url"]
    assert url.startswith(client.emu.storage_base_url + "/files/")
    assert "sig=" in url and "expires=" in url
    assert requests.get(url, timeout=10).status_code == 200
    tampered = url.replace("sig=", "sig=0")
    assert requests.get(tampered, timeout=10).status_code == 403
    later = url.replace("expires=", "expires=9")
    assert requests.get(later, timeout=10).status_code == 403
    assert client.emu.download_count(client.emu.files()[0].name) == 1


def test_urls_expire_after_their_ttl() -> None:
    with Emulator(conversations=4, pages=1, url_ttl_seconds=-1) as emu:
        c = Client(emu)
        url = c.page(None)["files"][0]["url"]
        assert requests.get(url, timeout=10).status_code == 403


def test_storage_redirect_and_request_log_headers() -> None:
    with Emulator(conversations=4, pages=1, files_per_page=1, storage_redirect=True) as emu:
        c = Client(emu)
        url = c.page(None)["files"][0]["url"]
        assert url.startswith(emu.api_base_url + "/files/")
        r = requests.get(url, timeout=10)
        assert r.status_code == 200 and r.history[0].status_code == 302
        assert r.url.startswith(emu.storage_base_url)
        log = emu.request_log
        assert [(x.server, x.method, x.status) for x in log] == [
            ("api", "POST", 200), ("api", "POST", 200), ("api", "GET", 302),
            ("storage", "GET", 200)]
        token_req, page_req = log[0], log[1]
        assert b"client_secret=" in token_req.body
        assert page_req.path == PAGE_PATH
        assert page_req.headers["Authorization"] == f"Bearer {c.token}"
        assert b'"format": "avro"' in page_req.body
        assert "Authorization" not in log[3].headers
        assert "sig=" in log[3].query and log[3].path.startswith("/files/0/0/")
        emu.clear_request_log()
        assert emu.request_log == []
