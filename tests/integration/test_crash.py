"""SIGKILL the real job (a subprocess with its own Spark) at a few crash points; rerun; exact set.

The full sweep (>= 30 points) is ``repo361-ingest crash-sweep``; here a few of the points that
hurt most: inside an executor's download, between the Delta commit and the watermark row (then
again right after the watermark repair), and between the watermark row and staging cleanup.
Each point costs one job subprocess (a Spark start); the rerun runs in this process.
"""

from __future__ import annotations

import pytest

from repo361_ingest.crashtest import JobSpec, Rerunner, check_tables, kill_and_recover
from repo361_ingest.emulator import Emulator

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def emulator():
    with Emulator(conversations=24, pages=3, files_per_page=2, records_per_file=2, seed=361) as emu:
        yield emu


@pytest.mark.parametrize(
    "kill_at",
    ["mid_download:3", "after_target_append:2+after_watermark_repair:1", "after_watermark_append:1"],
)
def test_kill_then_rerun_loses_and_duplicates_nothing(spark, emulator, tmp_path, kill_at):
    spec = JobSpec(emulator.api_base_url, emulator.token_url, emulator.client_id,
                   emulator.client_secret, tmp_path)
    result = kill_and_recover(emulator, spec, kill_at, Rerunner(spec, "inprocess", spark))

    assert result.killed, result.notes  # the job died where it was told to (SIGKILL)
    mid = result.after_kill
    assert mid.duplicated == 0 and mid.unexpected == 0
    assert mid.watermark_page <= mid.target_page  # never past committed data
    if kill_at.startswith("after_target_append:2"):
        # Page 2's commit landed, its watermark row did not; the second run repaired it.
        assert (mid.target_page, mid.watermark_page) == (2, 2)
    if kill_at == "mid_download:3":
        assert mid.rows == 8 and mid.target_page == 1  # batch 1 committed, batch 2 nothing
    final = check_tables(emulator.conversation_ids(), spec.target, spec.watermark)
    assert (final.lost, final.duplicated, final.unexpected) == (0, 0, 0)
    assert final.rows == 24 and final.watermark_page == final.target_page == 3
    assert result.staging_left == 0 and result.reruns == 1
