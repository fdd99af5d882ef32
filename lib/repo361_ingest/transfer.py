"""Run the downloads on the executors with the DataFrame API (no RDD, no SparkContext).

A small DataFrame of file entries is repartitioned and mapped with ``mapInArrow``; each task
streams its files into staging and yields one manifest row per file. Only the manifest (names,
sizes, hashes, schema fingerprints) comes back to the driver, never file contents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import SparkSession

from repo361_ingest.download import DownloadSettings, download_all

ENTRY_SCHEMA = "page_seq long, file_index int, name string, url string, path string"
MANIFEST_FIELDS = [
    ("page_seq", pa.int64(), "long"),
    ("file_index", pa.int32(), "int"),
    ("name", pa.string(), "string"),
    ("path", pa.string(), "string"),
    ("bytes", pa.int64(), "long"),
    ("sha256", pa.string(), "string"),
    ("schema_fingerprint", pa.string(), "string"),
    ("writer_schema", pa.string(), "string"),
    ("records", pa.int64(), "long"),
    ("attempts", pa.int32(), "int"),
    ("http_status", pa.int32(), "int"),
    ("status", pa.string(), "string"),
    ("error", pa.string(), "string"),
]
MANIFEST_SCHEMA = ", ".join(f"{name} {sql}" for name, _, sql in MANIFEST_FIELDS)
_ARROW_SCHEMA = pa.schema([(name, arrow) for name, arrow, _ in MANIFEST_FIELDS])
MAX_TASKS = 64


def _download_partition(settings: DownloadSettings):  # type: ignore[no-untyped-def]
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        entries = [row for batch in batches for row in batch.to_pylist()]
        if not entries:
            return
        rows = list(download_all(entries, settings))
        yield pa.RecordBatch.from_pylist(rows, schema=_ARROW_SCHEMA)

    return run


def download_on_executors(
    spark: SparkSession,
    entries: list[dict[str, Any]],
    settings: DownloadSettings,
    parallelism: int = 0,
    description: str = "repo361 download",
) -> list[dict[str, Any]]:
    """Download ``entries`` on the executors; returns the manifest rows (one per entry)."""
    if not entries:
        return []
    tasks = parallelism or min(len(entries), MAX_TASKS)
    tasks = max(1, min(tasks, len(entries)))
    rows = [tuple(e[k] for k in ("page_seq", "file_index", "name", "url", "path")) for e in entries]
    frame = spark.createDataFrame(rows, ENTRY_SCHEMA).repartition(tasks)
    manifest = frame.mapInArrow(_download_partition(settings), MANIFEST_SCHEMA)
    return [r.asDict() for r in manifest.collect()]
