"""The watermark table: one row per committed batch; the newest page_seq is the position.

Append-only, so it doubles as the run history. The position is repaired from the target's own
commit metadata when a run died between the data commit and the watermark row.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from repo361_ingest import failpoints
from repo361_ingest.pager import Position
from repo361_ingest.sink import Commit, is_table_name, our_commits, table_exists

log = logging.getLogger(__name__)

WATERMARK_SCHEMA = (
    "source string, continuation_token string, page_seq long, batch_id string, run_id string,"
    " files long, rows long, bytes long, committed_at timestamp, skip_files array<string>,"
    " repaired boolean"
)


@dataclass(frozen=True)
class WatermarkRow:
    source: str
    continuation_token: str | None
    page_seq: int
    batch_id: str
    run_id: str
    files: int
    rows: int
    bytes: int
    committed_at: dt.datetime
    skip_files: tuple[str, ...] = ()
    repaired: bool = False

    @property
    def position(self) -> Position:
        return Position(self.continuation_token, self.page_seq, self.skip_files)


def read_position(spark: SparkSession, table: str, source: str) -> Position:
    """The stored position for ``source``, or the start (no token, page 0) when there is none."""
    if not table_exists(spark, table):
        return Position(None, 0)
    latest = (
        _read(spark, table)
        .where(F.col("source") == source)
        .orderBy(F.col("page_seq").desc(), F.col("committed_at").desc())
        .limit(1)
        .collect()
    )
    if not latest:
        return Position(None, 0)
    row = latest[0]
    return Position(row["continuation_token"], int(row["page_seq"]), tuple(row["skip_files"] or ()))


def append_row(spark: SparkSession, table: str, row: WatermarkRow) -> None:
    """Append one watermark row (creating the table on first use)."""
    data = [
        (
            row.source, row.continuation_token, row.page_seq, row.batch_id, row.run_id,
            row.files, row.rows, row.bytes, row.committed_at, list(row.skip_files), row.repaired,
        )
    ]
    writer = spark.createDataFrame(data, WATERMARK_SCHEMA).write.format("delta").mode("append")
    if is_table_name(table):
        writer.saveAsTable(table)
    else:
        writer.save(table)


def row_from_commit(commit: Commit, committed_at: dt.datetime, repaired: bool) -> WatermarkRow:
    meta = commit.metadata
    return WatermarkRow(
        source=meta["source"],
        continuation_token=meta.get("token"),
        page_seq=int(meta["page_seq"]),
        batch_id=meta["batch_id"],
        run_id=meta["run_id"],
        files=int(meta.get("files", 0)),
        rows=commit.output_rows,
        bytes=int(meta.get("bytes", 0)),
        committed_at=committed_at,
        skip_files=tuple(meta.get("skip_files") or ()),
        repaired=repaired,
    )


def reconcile(spark: SparkSession, watermark: str, target: str, source: str) -> Position:
    """The position to resume from, repairing the watermark if the target is ahead of it.

    The target's newest commit for this source records the position after it. If that is past
    the watermark, a previous run committed data but died before its watermark row: append that
    row now (marked ``repaired``) instead of fetching and appending those pages again.
    """
    position = read_position(spark, watermark, source)
    commits = our_commits(spark, target, source)
    if not commits:
        return position
    newest = commits[0]
    if int(newest.metadata["page_seq"]) <= position.page_seq:
        return position
    row = row_from_commit(newest, dt.datetime.now(dt.timezone.utc), repaired=True)
    log.warning(
        "target is ahead of the watermark (page %d > %d): repairing the watermark from the"
        " target's commit %d",
        row.page_seq, position.page_seq, newest.version,
    )
    append_row(spark, watermark, row)
    failpoints.hit("after_watermark_repair")
    return row.position


def history(spark: SparkSession, table: str, source: str, limit: int = 20) -> list[WatermarkRow]:
    """The newest ``limit`` watermark rows for ``source``, newest first."""
    if not table_exists(spark, table):
        return []
    rows = (
        _read(spark, table)
        .where(F.col("source") == source)
        .orderBy(F.col("page_seq").desc(), F.col("committed_at").desc())
        .limit(limit)
        .collect()
    )
    return [
        WatermarkRow(
            source=r["source"], continuation_token=r["continuation_token"], page_seq=r["page_seq"],
            batch_id=r["batch_id"], run_id=r["run_id"], files=r["files"], rows=r["rows"],
            bytes=r["bytes"], committed_at=r["committed_at"],
            skip_files=tuple(r["skip_files"] or ()), repaired=bool(r["repaired"]),
        )
        for r in rows
    ]


def _read(spark: SparkSession, table: str):  # type: ignore[no-untyped-def]
    if is_table_name(table):
        return spark.read.table(table)
    return spark.read.format("delta").load(table)

