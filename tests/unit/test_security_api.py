"""Security (README "Security"), untrusted page bodies: bounded sizes, refused URLs, clear messages.

The emulator serves the hostile pages (its ``page_hook`` fault rewrites an answer); the job's real
``ExportApi`` and ``TokenProvider`` fetch them over loopback HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from repo361_ingest.api import MAX_FILES_PER_PAGE, MAX_NAME_CHARS, MAX_PAGE_BYTES, MAX_TOKEN_CHARS, ExportApi
from repo361_ingest.auth import Credentials, TokenProvider
from repo361_ingest.emulator import Emulator
from repo361_ingest.errors import PageFormatError, UnsafeInputError
from repo361_ingest.http import HttpSettings, build_session

SIG = "s1gnature-from-a-hostile-page"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(conversations=4, pages=2, files_per_page=1, records_per_file=2, seed=13) as e:
        yield e


def fetch(emu: Emulator, hook: Callable[[dict], None]):
    def rewrite(index: int, payload: dict) -> dict:
        hook(payload)
        return payload

    emu.faults.page_hook = rewrite
    http = HttpSettings(retries=0)
    session = build_session(http)
    tokens = TokenProvider(emu.token_url, Credentials(emu.client_id, emu.client_secret), session, http)
    return ExportApi(emu.api_base_url, tokens, session, http).fetch_page(None, 1)


def test_download_url_to_plain_http_elsewhere_fails_at_the_page_naming_the_file(emu):
    def hook(p):
        p["files"][0].update(name="conv_x", url=f"http://example.invalid/x?sig={SIG}")

    with pytest.raises(UnsafeInputError) as info:
        fetch(emu, hook)
    assert str(info.value) == (
        "page 1: download URL of file 'conv_x' must be https (or http to a loopback address),"
        " got http://example.invalid/x"
    )
    # Refused while parsing the page on the driver: no download was attempted at all.
    assert [r.path for r in emu.request_log] == ["/security/oauth2/token", "/rawdata/export/page"]


def test_page_body_over_the_bound_is_refused_while_reading(emu):
    with pytest.raises(PageFormatError, match=rf"^page 1: page body of \d+ bytes exceeds the bound of {MAX_PAGE_BYTES} bytes$"):
        fetch(emu, lambda p: p.update(padding="x" * MAX_PAGE_BYTES))


def test_file_list_over_the_bound_is_refused(emu):
    with pytest.raises(PageFormatError, match=f"^page 1: {MAX_FILES_PER_PAGE + 1} files exceed the bound of {MAX_FILES_PER_PAGE}$"):
        fetch(emu, lambda p: p.update(files=p["files"] * (MAX_FILES_PER_PAGE + 1)))


def test_continuation_token_over_the_bound_is_refused(emu):
    with pytest.raises(PageFormatError, match=f"^page 1: continuationToken longer than {MAX_TOKEN_CHARS} chars$"):
        fetch(emu, lambda p: p.update(continuationToken="t" * (MAX_TOKEN_CHARS + 1)))


def test_file_name_over_the_bound_is_refused_naming_its_start(emu):
    with pytest.raises(PageFormatError, match=rf"^page 1: files\[0\] has a name of {MAX_NAME_CHARS + 1} chars, over the bound of {MAX_NAME_CHARS} \(starts 'nnnn"):
        fetch(emu, lambda p: p["files"][0].update(name="n" * (MAX_NAME_CHARS + 1)))


@pytest.mark.parametrize("name", ["", None, 7])
def test_file_without_a_usable_name_is_refused(emu, name):
    with pytest.raises(PageFormatError, match=r"^page 1: files\[0\] has no usable 'name'$"):
        fetch(emu, lambda p: p["files"][0].update(name=name))


def test_emulator_hooks_used_by_the_security_tests(emu):
    """page_hook rewrites answers until reset; revoke_tokens answers 401 to old tokens only."""
    page = fetch(emu, lambda p: p["files"][0].update(name="renamed"))
    assert [f.name for f in page.files] == ["renamed"]
    emu.faults.reset()
    assert emu.faults.page_hook is None
    http = HttpSettings(retries=0)
    session = build_session(http)
    tokens = TokenProvider(emu.token_url, Credentials(emu.client_id, emu.client_secret), session, http)
    api = ExportApi(emu.api_base_url, tokens, session, http)
    assert [f.name for f in api.fetch_page(None, 1).files] == [emu.files()[0].name]
    first = emu.issued_tokens()
    emu.revoke_tokens()
    api.fetch_page(None, 1)  # 401, then a fresh token works
    assert [r.status for r in emu.request_log if r.path == "/rawdata/export/page"][-2:] == [401, 200]
    assert emu.issued_tokens()[: len(first)] == first and len(emu.issued_tokens()) == len(first) + 1
