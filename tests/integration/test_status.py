"""`repo361-ingest status`: the stored position and the recent batches, from the watermark table."""

from __future__ import annotations

import datetime as dt

import pytest

from repo361_ingest.cli import main
from repo361_ingest.watermark import WatermarkRow, append_row

pytestmark = pytest.mark.spark


def _row(page_seq: int, run_id: str, rows: int, minute: int, repaired: bool = False) -> WatermarkRow:
    return WatermarkRow(
        source="repo361", continuation_token=f"tok-{page_seq}", page_seq=page_seq,
        batch_id=f"{run_id}-{page_seq:05d}", run_id=run_id, files=2 * page_seq, rows=rows,
        bytes=1_500_000 * page_seq, committed_at=dt.datetime(2026, 1, 2, 3, minute, tzinfo=dt.timezone.utc),
        repaired=repaired,
    )


def test_status_prints_position_and_recent_batches(spark, tmp_path, capsys):
    table = str(tmp_path / "watermark")
    assert main(["status", "--watermark-table", table]) == 0
    assert capsys.readouterr().out.strip() == f"no committed batch for source 'repo361' in {table}"

    for row in (_row(2, "run-a", 40, 1), _row(5, "run-a", 61, 2), _row(7, "run-b", 9, 3, repaired=True)):
        append_row(spark, table, row)
    other = WatermarkRow(**{**_row(9, "run-x", 1, 4).__dict__, "source": "elsewhere"})
    append_row(spark, table, other)  # another source in the same table: not shown

    assert main(["status", "--watermark-table", table, "--limit", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "source 'repo361': position after page 7, committed 2026-01-02 03:03:00"
    assert lines[1].split() == ["page_seq", "committed_at", "run_id", "files", "rows", "MB"]
    assert [line.split() for line in lines[2:]] == [
        ["7", "2026-01-02", "03:03:00", "run-b", "14", "9", "10.50", "(repaired)"],
        ["5", "2026-01-02", "03:02:00", "run-a", "10", "61", "7.50"],
    ]
