"""Run the downloads on the executors with the DataFrame API (no RDD, no SparkContext).

The file entries are split into ``tasks`` slices on the driver and shipped inside the
``mapInArrow`` function; the DataFrame that drives it is ``spark.range(tasks)`` with one row per
partition, so each task downloads exactly its slice. That is one Spark stage with no shuffle and no
Python-side ``createDataFrame`` (which would cost a Python job plus an exchange for every batch).
Each task streams its files into staging and yields one manifest row per file; only the manifest
(names, sizes, hashes, schema fingerprints) comes back to the driver, never file contents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql import SparkSession

from repo361_ingest.download import DownloadSettings, download_all

ENTRY_KEYS = ("page_seq", "file_index", "name", "url", "path")
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


def plan_slices(entries: list[dict[str, Any]], tasks: int) -> list[list[dict[str, Any]]]:
    """Deal ``entries`` round-robin into ``tasks`` slices (consecutive files of a page, which tend
    to be of similar size, land on different tasks)."""
    slices: list[list[dict[str, Any]]] = [[] for _ in range(tasks)]
    for i, entry in enumerate(entries):
        slices[i % tasks].append({k: entry[k] for k in ENTRY_KEYS})
    return slices


def _download_slices(
    slices: list[list[dict[str, Any]]], settings: DownloadSettings
) -> Callable[[Iterable[pa.RecordBatch]], Iterable[pa.RecordBatch]]:
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for task in batch.column(0).to_pylist():
                entries = slices[int(task)]
                if entries:
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
    """Download ``entries`` on the executors; returns the manifest rows (one per entry).

    ``parallelism`` is the number of tasks (0 = one per file up to ``MAX_TASKS``); each task runs
    ``settings.threads_per_task`` downloads at a time.
    """
    if not entries:
        return []
    tasks = parallelism or min(len(entries), MAX_TASKS)
    tasks = max(1, min(tasks, len(entries)))
    slices = plan_slices(entries, tasks)
    driver = spark.range(0, tasks, 1, numPartitions=tasks)
    manifest = driver.mapInArrow(_download_slices(slices, settings), MANIFEST_SCHEMA)
    return [r.asDict() for r in manifest.collect()]
