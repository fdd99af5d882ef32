"""Two runs on the same target and watermark never both append the same pages.

Every batch commits with a Delta transaction id of its start position (``sink.batch_txn``): Delta
accepts one batch per start, whatever its end, and fails the second of two concurrent commits
that read the same id. The first test pins the hole a single id with ``txnVersion`` = last page
would leave (a run with longer batches appending pages another run already committed); the second
starts two real job subprocesses at the same moment.
"""

from __future__ import annotations

import time

import pytest

from repo361_ingest import run as run_module
from repo361_ingest.crashtest import JobSpec, check_tables, finish_job, start_job
from repo361_ingest.emulator import Emulator
from repo361_ingest.errors import ConcurrentRunError
from repo361_ingest.pager import Position
from repo361_ingest.run import run_ingest
from repo361_ingest.watermark import read_position

from helpers import emu_credentials

pytestmark = pytest.mark.spark


def test_a_run_with_longer_batches_from_an_old_position_appends_nothing(spark, make_config, monkeypatch):
    with Emulator(conversations=32, pages=4, files_per_page=1, records_per_file=2, seed=51) as emu:
        creds = emu_credentials(emu)
        # Run A: batches of one page; it commits pages 1 and 2.
        run_ingest(spark, make_config(emu, batch_max_pages=1, max_pages=2), creds)
        first_two = sorted(c for f in emu.files() if f.page < 2 for c in
                           (x["ConversationId"] for x in emu.factory.conversations(f)))
        # Run B read the position before A committed (page 0), and batches three pages at once:
        # its first batch, pages 1-3, would end past A's last page. It must append nothing.
        monkeypatch.setattr(run_module, "reconcile", lambda *args: Position(None, 0))
        config_b = make_config(emu, batch_max_pages=3)
        with pytest.raises(ConcurrentRunError, match="another run is active or finished first") as lost:
            run_ingest(spark, config_b, creds)
        assert "pages 1-3" in str(lost.value)
        ids = sorted(r[0] for r in spark.read.format("delta").load(config_b.table).select("ConversationId").collect())
        assert ids == first_two
        assert read_position(spark, config_b.watermark_table, config_b.source).page_seq == 2


def test_two_runs_started_at_once_append_every_page_exactly_once(spark, tmp_path):
    # Slow pages make the two runs overlap for real; different batch sizes give them different
    # batch boundaries (the case a single txnVersion = last page would get wrong).
    with Emulator(conversations=40, pages=5, files_per_page=1, records_per_file=2, seed=52,
                  latency_ms=150) as emu:
        base = JobSpec(emu.api_base_url, emu.token_url, emu.client_id, emu.client_secret, tmp_path)
        specs = [
            JobSpec(base.api_base_url, base.token_url, base.client_id, base.client_secret, tmp_path,
                    settings=base.settings + (f"batch_max_pages={size}",))
            for size in (1, 2)
        ]
        started = time.monotonic()
        procs = [start_job(spec) for spec in specs]
        results = [finish_job(proc, started) for proc in procs]

        codes = [r.returncode for r in results]
        assert set(codes) <= {0, 3}, [r.last_stderr_line for r in results]
        for r in results:
            if r.returncode == 3:
                assert "another run is active or finished first" in r.last_stderr_line
                assert "the failing batch committed nothing" in r.last_stderr_line
        final = check_tables(emu.conversation_ids(), base.target, base.watermark)
        assert (final.lost, final.duplicated, final.unexpected, final.rows) == (0, 0, 0, 40)
        assert final.watermark_page == final.target_page == 5
        ids = [r[0] for r in spark.read.format("delta").load(base.target).select("ConversationId").collect()]
        assert sorted(ids) == sorted(emu.conversation_ids())
