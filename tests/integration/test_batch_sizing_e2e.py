"""batch_max_bytes end to end: the sizes of the first batch's downloads narrow the next batches."""

from __future__ import annotations

import pytest

from repo361_ingest.emulator import Emulator
from repo361_ingest.run import run_ingest
from repo361_ingest.watermark import history

from helpers import emu_credentials

pytestmark = pytest.mark.spark


def test_byte_bound_commits_smaller_batches_and_loses_nothing(spark, make_config):
    # One Spark run only (a second run with the default bound costed ~20 s more): with the default
    # 2 GiB bound, batch_max_files=2 commits pages 1-2 and 3-4, two batches (unit-tested in
    # tests/unit/test_batch_sizing.py); the byte bound must make it three.
    with Emulator(conversations=20, pages=4, files_per_page=1, records_per_file=1, seed=17) as emu:
        sizes = [emu.file_path(n).stat().st_size for n in emu.file_names()]
        # About 1.5 files: every mean file size so far lies in (bound / 2, bound], so the
        # estimate answers exactly one file per batch once the first batch was downloaded.
        bound = max(sizes) * 3 // 2
        assert all(bound // 2 < s <= bound for s in sizes)
        config = make_config(emu, batch_max_files=2, batch_max_bytes=bound)
        summary = run_ingest(spark, config, emu_credentials(emu))
        ids = [r[0] for r in spark.read.format("delta").load(config.table).select("ConversationId").collect()]
        assert sorted(ids) == sorted(emu.conversation_ids())
        rows = history(spark, config.watermark_table, config.source)
        # The first batch knows no size yet and takes batch_max_files=2; then one file per batch.
        assert sorted((r.page_seq, r.files, r.bytes) for r in rows) == [
            (2, 2, sizes[0] + sizes[1]), (3, 1, sizes[2]), (4, 1, sizes[3]),
        ]
        assert (summary.batches, summary.files, summary.bytes) == (3, 4, sum(sizes))
