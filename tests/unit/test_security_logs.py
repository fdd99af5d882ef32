"""Security (README "Security"), secrets: no log record, exception or repr carries a secret.

Real loopback HTTP against the emulator; nothing is mocked. The checks go through pytest's own
log handler (``caplog``), not ours: the scrubbing must not depend on which handler is attached.
"""

from __future__ import annotations

import logging
import socket
import traceback
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from repo361_ingest import logs
from repo361_ingest.api import FileRef, Page, parse_page
from repo361_ingest.auth import Credentials, TokenProvider
from repo361_ingest.config import load_config
from repo361_ingest.download import DownloadSettings, download_all
from repo361_ingest.emulator import Emulator
from repo361_ingest.errors import ConfigError, DownloadError
from repo361_ingest.http import HttpSettings, build_session

FAST = HttpSettings(connect_timeout_s=2, read_timeout_s=5, retries=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://s.example/f/x?sig=abc&exp=1 done", "GET https://s.example/f/x?*** done"),
        ('"GET /files/0/1/x?expires=1&sig=abc HTTP/1.1" 200 9', '"GET /files/0/1/x?*** HTTP/1.1" 200 9'),
        ("Max retries exceeded with url: /f/x?sig=abc (Caused by X)", "Max retries exceeded with url: /f/x?*** (Caused by X)"),
        ("Incremented Retry for (url='/f/x?sig=abc'): Retry(total=2)", "Incremented Retry for (url='/f/x?***'): Retry(total=2)"),
        ("Authorization: Bearer eyJhbGciOi.J9.sig-x", "Authorization: Bearer ***"),
        ("what? a plain question = fine", "what? a plain question = fine"),
    ],
)
def test_scrub_masks_url_queries_and_bearer_tokens(text, expected):
    assert logs.scrub(text) == expected


def test_registered_secrets_are_masked_longest_first():
    logs.register_secret("unit-secret-1234")
    logs.register_secret("unit-secret-1234-and-more")
    assert logs.scrub("a unit-secret-1234-and-more b unit-secret-1234 c") == "a *** b *** c"
    logs.register_secret("ab")  # too short to mask without wrecking every message
    assert logs.scrub("about") == "about"


def test_records_from_any_logger_are_scrubbed_before_any_handler_sees_them(caplog, caplog_text):
    """urllib3 logs the signed request line at DEBUG; requests' exceptions hold the full URL."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # another test may have quietened it
    logs.install()
    with Emulator(conversations=2, pages=1, files_per_page=1, records_per_file=2, seed=5) as emu:
        session = build_session(FAST)
        token = session.post(emu.token_url, data={
            "client_id": emu.client_id, "client_secret": emu.client_secret,
            "grant_type": "client_credentials"}).json()["access_token"]
        page = session.post(emu.api_base_url + "/rawdata/export/page",
                            json={"continuationToken": None, "format": "avro"},
                            headers={"Authorization": f"Bearer {token}"}).json()
        url = page["files"][0]["url"]
        sig = parse_qs(urlsplit(url).query)["sig"][0]
        assert session.get(url).status_code == 200
        logging.getLogger("some.library").warning("fetched %s with Bearer %s", url, token)

    with socket.socket() as s:  # a closed port: requests raises with the whole URL in the text
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/f/x?sig={sig}"
    try:
        session.get(dead)
    except requests.ConnectionError:
        logging.getLogger("another.library").exception("download failed")

    text = caplog_text()
    assert f'"GET {urlsplit(url).path}?*** HTTP/1.1" 200' in text  # urllib3's own line
    assert "fetched http://" in text and "Bearer ***" in text
    assert "ConnectionError" in text and "/f/x?***" in text
    assert sig not in text and token not in text
    for record in caplog.records:  # the exception object is gone, only its scrubbed text stays
        assert record.exc_info is None and sig not in (record.exc_text or "")


def test_objects_holding_secrets_have_redacted_repr():
    creds = Credentials("client-a", "the-client-secret-xyz")
    assert "the-client-secret-xyz" not in repr(creds) + str(creds) + f"{creds}"
    provider = TokenProvider("http://127.0.0.1:9/token", creds, build_session(FAST), FAST)
    assert "the-client-secret-xyz" not in repr(provider)
    ref = FileRef("conv_001", "https://s.example/f?sig=s1gnature")
    page = parse_page(
        b'{"continuationToken": "t", "files": [{"name": "conv_001", "url": "https://s.example/f?sig=s1gnature"}]}',
        None, "page 1",
    )
    assert isinstance(page, Page)
    assert "s1gnature" not in repr(ref) + repr(page) + ref.safe_url
    settings = DownloadSettings(http=FAST, max_bytes=10)
    assert "sig" not in repr(settings)


def test_secrets_cannot_be_config_keys(tmp_path):
    """Secrets come from the environment or a secret scope, never from YAML or the command line."""
    env = {"REPO361_CLIENT_SECRET": "env-secret-value", "REPO361_CLIENT_ID": "id"}
    config = load_config(None, {}, [], environ=env, cwd=tmp_path)
    assert "env-secret-value" not in repr(config) + config.model_dump_json()
    with pytest.raises(ConfigError, match="unknown config key 'client_secret'"):
        load_config(None, {}, ["client_secret=oops"], environ={}, cwd=tmp_path)


def test_unexpected_download_task_error_carries_no_chained_traceback():
    """What escapes an executor becomes a PythonException that Spark logs: nothing chained."""
    entry = {"page_seq": 1, "file_index": 0, "name": "x", "path": "/nonexistent/x.avro"}
    with pytest.raises(DownloadError, match="download task failed unexpectedly: KeyError") as info:
        list(download_all([entry], DownloadSettings(http=FAST, max_bytes=10)))
    assert info.value.__suppress_context__ and info.value.__cause__ is None
    text = "".join(traceback.format_exception(info.value))
    assert "During handling" not in text and "direct cause" not in text


@pytest.fixture
def pyspark_query_context_logger():
    """The logger PySpark creates when it raises an error with a query context (set up before the
    test's call phase, as when an earlier test made Spark raise)."""
    from pyspark.logger import PySparkLogger

    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    logger.propagate = False  # what pyspark.errors does before it logs
    return logger


def test_log_checks_read_plain_text_after_pyspark_has_logged_a_query_context(
    pyspark_query_context_logger, caplog, caplog_text
):
    # Found on a fresh clone: pytest attached its handler to that non-propagating logger, PySpark
    # put its JSON formatter on it, and the checks for '"GET ... HTTP/1.1" 200' then failed.
    caplog.set_level(logging.INFO)
    logging.getLogger("some.library").info('"GET /f/x?*** HTTP/1.1" 200')
    assert caplog_text() == 'INFO some.library: "GET /f/x?*** HTTP/1.1" 200'
