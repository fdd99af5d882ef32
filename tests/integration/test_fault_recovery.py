"""The job under the emulator's faults: retried, renewed, refreshed, or failed cleanly and resumed.

Every test checks the exact set of ConversationIds in the target and the watermark's token, and
uses the emulator's request log to show the mechanism (what was requested again, how often).
HTTP backoff is kept tiny through the config so retries cost milliseconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from repo361_ingest.cli import EXIT_FAILED, EXIT_INTERNAL, execute_run
from repo361_ingest.emulator import Emulator
from repo361_ingest.errors import ApiError, DownloadError
from repo361_ingest.run import run_ingest
from repo361_ingest.watermark import WatermarkRow, append_row, read_position

from helpers import emu_credentials

pytestmark = pytest.mark.spark

FAST = {"backoff_factor_s": 0.01, "backoff_max_s": 0.05, "batch_max_pages": 1}
PAGE_PATH = "/rawdata/export/page"


def target_ids(spark, config) -> list[str]:
    if not os.path.isdir(os.path.join(config.table, "_delta_log")):
        return []
    rows = spark.read.format("delta").load(config.table).select("ConversationId").collect()
    return sorted(r[0] for r in rows)


def ids_of_pages(emu, pages) -> list[str]:
    return sorted(c["ConversationId"] for f in emu.files() if f.page in pages for c in emu.factory.conversations(f))


def page_requests(emu) -> list[tuple[str | None, int, str]]:
    """(continuationToken sent, status, Authorization) of every page request, in order."""
    out = []
    for r in emu.request_log:
        if r.server == "api" and r.path == PAGE_PATH:
            out.append((json.loads(r.body or b"{}").get("continuationToken"), r.status,
                        r.headers.get("Authorization", "")))
    return out


def downloads(emu, status: int | None = None) -> list[str]:
    """File names (last path part) of storage GETs, optionally only those answered ``status``."""
    return [r.path.rsplit("/", 1)[-1] for r in emu.request_log
            if r.server == "storage" and (status is None or r.status == status)]


def staging_runs(config) -> list[str]:
    root = os.path.join(config.staging, config.source)
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_rate_limits_5xx_and_a_cut_off_body_are_retried(spark, make_config):
    with Emulator(conversations=24, pages=3, files_per_page=2, records_per_file=2, seed=41) as emu:
        config = make_config(emu, **FAST)
        cut = emu.files()[1].name
        emu.faults.rate_limit_pages(2, retry_after_s=1)
        emu.faults.fail_pages(2, status=502)
        emu.faults.fail_downloads(2, status=503)
        emu.faults.truncate_file(cut, times=1)

        summary = run_ingest(spark, config, emu_credentials(emu))

        assert target_ids(spark, config) == sorted(emu.conversation_ids())
        assert summary.outcome == "success" and summary.rows == 24
        statuses = [s for _, s, _ in page_requests(emu)]
        assert statuses[:5] == [429, 429, 502, 502, 200]  # the same first page, retried
        assert [t for t, _, _ in page_requests(emu)][:5] == [None] * 5
        assert len(downloads(emu, 503)) == 2
        assert downloads(emu).count(cut) >= 2 and emu.download_count(cut) == 1
        position = read_position(spark, config.watermark_table, config.source)
        assert (position.token, position.page_seq) == (emu._encode_token(3), 3)
        assert staging_runs(config) == []


def test_expired_token_is_refreshed_once_and_a_rejected_fresh_token_fails(spark, make_config):
    # Every request takes >= 0.3 s, so the first token is older than 1.5 s by the 6th page.
    with Emulator(conversations=12, pages=6, files_per_page=1, records_per_file=2, seed=42,
                  latency_ms=300) as emu:
        config = make_config(emu, **FAST)
        emu.faults.expire_tokens_older_than(1.5)
        run_ingest(spark, config, emu_credentials(emu))
        assert target_ids(spark, config) == sorted(emu.conversation_ids())

        pages = page_requests(emu)
        rejected = [i for i, (_, status, _) in enumerate(pages) if status == 401]
        assert rejected, "the token must have expired during the run"
        for i in rejected:  # the same page again, at once, with a new token, and it worked
            token, _, old_auth = pages[i]
            assert pages[i + 1][0] == token and pages[i + 1][1] == 200 and pages[i + 1][2] != old_auth
        token_calls = [r for r in emu.request_log if r.path == "/security/oauth2/token"]
        assert len(token_calls) == 1 + len(rejected)

        # A token rejected right after it was issued is not retried forever: once, then fail.
        emu.add_pages(1, conversations=2)
        emu.faults.expire_tokens_older_than(0)
        emu.faults.latency_ms = 0
        emu.clear_request_log()
        with pytest.raises(ApiError, match=r"page 7: export API answered HTTP 401"):
            run_ingest(spark, config, emu_credentials(emu))
        assert [s for _, s, _ in page_requests(emu)] == [401, 401]
        assert target_ids(spark, config) == ids_of_pages(emu, range(6))
        assert read_position(spark, config.watermark_table, config.source).page_seq == 6


def _break_urls_of(page_index: int, times: float):
    """A page hook: the first ``times`` answers for ``page_index`` carry URLs storage rejects (403)."""
    served = Counter()

    def hook(index, payload):
        if index == page_index and served[index] < times:
            served[index] += 1
            for f in payload["files"]:
                parts = urlsplit(f["url"])
                query = dict(parse_qsl(parts.query))
                query["sig"] = "0" * 32
                f["url"] = urlunsplit(parts._replace(query=urlencode(query)))
        return payload

    return hook


def test_expired_urls_are_renewed_by_requesting_the_page_again(spark, make_config):
    with Emulator(conversations=24, pages=3, files_per_page=2, records_per_file=2, seed=43) as emu:
        config = make_config(emu, **FAST)
        emu.faults.page_hook = _break_urls_of(1, times=1)
        summary = run_ingest(spark, config, emu_credentials(emu))

        assert target_ids(spark, config) == sorted(emu.conversation_ids())
        sent = Counter(t for t, s, _ in page_requests(emu) if s == 200)
        assert sent[emu._encode_token(1)] == 2  # page 2 (index 1) asked again for fresh URLs
        assert sent[None] == 1 and sent[emu._encode_token(2)] == 1
        assert sorted(downloads(emu, 403)) == sorted(f.name for f in emu.files() if f.page == 1)
        assert summary.url_renewals == 1

        # Proactive: pages older than url_renew_fraction of expiryHours are renewed before
        # downloading (fraction 0: always), so no download ever meets an expired URL.
        emu.faults.page_hook = None
        emu.add_pages(2, conversations=8)
        emu.clear_request_log()
        again = run_ingest(spark, config.model_copy(update={"url_renew_fraction": 0.0}), emu_credentials(emu))
        sent = Counter(t for t, s, _ in page_requests(emu) if s == 200)
        assert sent[emu._encode_token(3)] == 2 and sent[emu._encode_token(4)] == 2
        assert downloads(emu, 403) == [] and again.url_renewals == 2
        assert target_ids(spark, config) == sorted(emu.conversation_ids())

        # URLs that stay expired: bounded renewals, then the batch fails naming its files.
        emu.add_pages(1, conversations=4)
        emu.faults.page_hook = _break_urls_of(5, times=float("inf"))
        emu.clear_request_log()
        with pytest.raises(DownloadError, match=r"stayed expired after 1 renewal") as failed:
            run_ingest(spark, config.model_copy(update={"max_url_renewals": 1}), emu_credentials(emu))
        assert emu.files()[-1].name in str(failed.value)
        assert Counter(t for t, _, _ in page_requests(emu))[emu._encode_token(5)] == 2
        assert target_ids(spark, config) == ids_of_pages(emu, range(5))
        position = read_position(spark, config.watermark_table, config.source)
        assert (position.token, position.page_seq) == (emu._encode_token(5), 5)
        assert staging_runs(config) == []


def test_failing_batches_commit_nothing_and_the_rerun_completes(spark, make_config):
    with Emulator(conversations=16, pages=4, files_per_page=1, records_per_file=2, seed=44) as emu:
        config = make_config(emu, **FAST)
        creds = emu_credentials(emu)
        first_two = ids_of_pages(emu, (0, 1))

        def unchanged() -> None:
            assert target_ids(spark, config) == first_two
            position = read_position(spark, config.watermark_table, config.source)
            assert (position.token, position.page_seq) == (emu._encode_token(2), 2)
            assert staging_runs(config) == []

        # A page that answers 500 for good: the earlier batches stay, the run stops there.
        emu.faults.fail_page_permanently(2)
        with pytest.raises(ApiError, match=r"page 3: export API answered HTTP 500") as failed:
            run_ingest(spark, config, creds)
        assert failed.value.summary.batches == 2
        failing = [s for t, s, _ in page_requests(emu) if t == emu._encode_token(2)]
        assert failing == [500] * (1 + config.http_retries)  # bounded retries, then stop
        unchanged()

        # A corrupt Avro file: named, nothing committed.
        bad = emu.files()[2].name
        emu.faults.reset()
        emu.faults.corrupt_file(bad)
        with pytest.raises(DownloadError, match=rf"{bad}.*not a valid Avro container"):
            run_ingest(spark, config, creds)
        unchanged()

        # A body that is always cut short: retried, then named.
        emu.faults.reset()
        emu.faults.truncate_file(bad, times=99)
        # (the cut-off body surfaces as a short read or an incomplete chunked body)
        with pytest.raises(DownloadError, match=rf"{bad}.* failed after 3 attempt\(s\): "):
            run_ingest(spark, config, creds)
        unchanged()

        emu.faults.reset()
        done = run_ingest(spark, config, creds)
        assert done.outcome == "success" and done.start_page_seq == 2
        assert target_ids(spark, config) == sorted(emu.conversation_ids())  # exact, no duplicates
        position = read_position(spark, config.watermark_table, config.source)
        assert (position.token, position.page_seq) == (emu._encode_token(4), 4)


def test_cli_says_what_failed_for_a_4xx_and_for_a_spark_error(spark, make_config, capsys, monkeypatch):
    with Emulator(conversations=8, pages=2, files_per_page=1, records_per_file=2, seed=45) as emu:
        monkeypatch.setenv("REPO361_CLIENT_ID", emu.client_id)
        monkeypatch.setenv("REPO361_CLIENT_SECRET", emu.client_secret)
        config = make_config(emu, **FAST)
        # A stored token the API does not know: HTTP 400 is not retried.
        append_row(spark, config.watermark_table, WatermarkRow(
            "repo361", "not-a-token", 5, "b", "r", 0, 0, 0, dt.datetime.now(dt.timezone.utc)))
        assert execute_run(config, spark) == EXIT_FAILED
        err = capsys.readouterr().err.strip().splitlines()
        assert "page 6: export API answered HTTP 400" in err[-1]
        assert err[-1].endswith("(0 batch(es) committed, watermark at page 5; the failing batch committed nothing)")
        assert [s for _, s, _ in page_requests(emu)] == [400]

        # A Spark error (a partition column that does not exist) still prints the summary and
        # one clear line, with the error's first line only.
        other = make_config(emu, **FAST, partition_by="[no_such_column]",
                            watermark_table=config.watermark_table + "_2")
        assert execute_run(other, spark) == EXIT_INTERNAL
        out, err = capsys.readouterr()
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["outcome"] == "failed" and summary["batches"] == 0
        last = err.strip().splitlines()[-1]
        assert last.startswith("repo361-ingest: run failed with an unexpected error: ")
        assert "Exception" in last and "no_such_column" in last and "\tat " not in last
        assert emu.client_secret not in out + err
