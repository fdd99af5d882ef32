"""Downloads start while the pager is still fetching the batch's later pages (issue 6).

Paging is serial; without early downloads a batch of many pages waits for its last page before its
first download. The emulator's page hook holds back the batch's last pages until a file of the
batch has been downloaded, so these tests pass only if downloads really start early; a run without
early downloads would wait for the hook's timeout and fail the assertions on what it saw.
"""

from __future__ import annotations

import threading

import pytest

from repo361_ingest.emulator import Emulator
from repo361_ingest.run import run_ingest
from repo361_ingest.watermark import history

from helpers import emu_credentials

pytestmark = pytest.mark.spark

PAGES, FILES_PER_PAGE = 8, 2


def hold_last_page_until_a_download(emu: Emulator, seen: dict[str, bool]):
    """A page hook: the last page (and the end-of-data page) waits, at most 60 s, for a download."""
    first_file = emu.file_names()[0]
    downloaded = threading.Event()

    def hook(index: int, payload: dict) -> dict:
        if index >= PAGES - 1:
            for _ in range(600):
                if emu.download_count(first_file) or any(
                    r.server == "storage" and r.method == "GET" for r in emu.request_log
                ):
                    downloaded.set()
                    break
                threading.Event().wait(0.1)
            seen.setdefault("downloaded_before_last_page", downloaded.is_set())
        return payload

    return hook


def test_files_download_while_the_pager_fetches_later_pages_of_the_same_batch(spark, make_config):
    # 30 ms per request makes the pager the bottleneck, as a real API's round trips do.
    with Emulator(conversations=64, pages=PAGES, files_per_page=FILES_PER_PAGE, records_per_file=2,
                  seed=23, latency_ms=30) as emu:
        seen: dict[str, bool] = {}
        emu.faults.page_hook = hold_last_page_until_a_download(emu, seen)
        config = make_config(emu)
        summary = run_ingest(spark, config, emu_credentials(emu))
        ids = [r[0] for r in spark.read.format("delta").load(config.table).select("ConversationId").collect()]
        assert seen == {"downloaded_before_last_page": True}
        # Still one batch, one commit, every file downloaded exactly once, nothing lost or doubled.
        assert (summary.batches, summary.files) == (1, PAGES * FILES_PER_PAGE)
        assert sorted(ids) == sorted(emu.conversation_ids()) and len(ids) == 64
        assert all(emu.download_count(n) == 1 for n in emu.file_names())
        rows = history(spark, config.watermark_table, config.source)
        assert [(r.page_seq, r.files) for r in rows] == [(PAGES, PAGES * FILES_PER_PAGE)]


def test_early_downloads_whose_urls_expired_are_renewed_and_committed_once(spark, make_config):
    with Emulator(conversations=64, pages=PAGES, files_per_page=FILES_PER_PAGE, records_per_file=2,
                  seed=29, latency_ms=30) as emu:
        seen: dict[str, bool] = {}
        hold = hold_last_page_until_a_download(emu, seen)
        expired = threading.Event()

        def hook(index: int, payload: dict) -> dict:
            # Once, at the third page: every URL issued so far (pages 1-3) answers 403 from now on;
            # a renewal's request for page 3 again must not expire them anew.
            if index == 2 and not expired.is_set():
                expired.set()
                emu.faults.expire_urls()
            return hold(index, payload)

        emu.faults.page_hook = hook
        config = make_config(emu)
        summary = run_ingest(spark, config, emu_credentials(emu))
        ids = [r[0] for r in spark.read.format("delta").load(config.table).select("ConversationId").collect()]
        refused = [r for r in emu.request_log if r.server == "storage" and r.status == 403]
        assert seen == {"downloaded_before_last_page": True}
        assert refused, "the early wave should have met expired URLs"
        assert summary.url_renewals >= 1
        assert sorted(ids) == sorted(emu.conversation_ids()) and len(ids) == 64
        assert all(emu.download_count(n) == 1 for n in emu.file_names())
        assert summary.batches == 1
