"""Staged Avro files -> one row per conversation, with the ``_`` ingestion columns.

spark-avro reads every file of one load with a single schema (the first file's, unless told
otherwise), so files are read per writer-schema group and the groups are unioned by name: a
newer file's extra fields are never dropped because an older file came first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

ENTITIES = "Entities"
INGESTION_COLUMNS = ("_source_file", "_batch_id", "_page_seq", "_ingested_at", "_run_id")


@dataclass(frozen=True)
class StagedFile:
    """A verified staged file: where Spark reads it, and what it came from."""

    spark_path: str
    staged_name: str  # the file's base name in staging, unique within a batch
    source_name: str  # the name the API gave it
    page_seq: int
    schema_fingerprint: str
    records: int


@dataclass(frozen=True)
class BatchInfo:
    run_id: str
    batch_id: str
    ingested_at: dt.datetime


def read_entities(spark: SparkSession, files: Sequence[StagedFile], info: BatchInfo) -> DataFrame:
    """Read the staged files of one batch and explode ``Entities`` into conversation rows."""
    groups: dict[str, list[str]] = {}
    for f in files:
        if f.records > 0:  # a zero-record file has nothing to read (and may lack a usable schema)
            groups.setdefault(f.schema_fingerprint, []).append(f.spark_path)
    frames = [
        spark.read.format("avro").load(paths).select(
            F.explode(ENTITIES).alias("_entity"), F.col("_metadata.file_name").alias("_staged_name")
        )
        for paths in groups.values()
    ]
    if not frames:
        return empty_result(spark)
    conversations = [df.select("_entity.*", "_staged_name") for df in frames]
    rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), conversations)
    return rows.transform(lambda df: with_ingestion_columns(df, spark, files, info))


def with_ingestion_columns(
    df: DataFrame, spark: SparkSession, files: Sequence[StagedFile], info: BatchInfo
) -> DataFrame:
    """Attach ``_source_file`` and ``_page_seq`` (by staged name) and the batch's constants."""
    lookup = spark.createDataFrame(
        [(f.staged_name, f.source_name, f.page_seq) for f in files],
        "_staged_name string, _source_file string, _page_seq long",
    )
    return (
        df.join(F.broadcast(lookup), on="_staged_name", how="inner")
        .drop("_staged_name")
        .withColumn("_batch_id", F.lit(info.batch_id))
        .withColumn("_ingested_at", F.lit(info.ingested_at).cast(T.TimestampType()))
        .withColumn("_run_id", F.lit(info.run_id))
        .select(
            *[c for c in df.columns if c != "_staged_name" and c not in INGESTION_COLUMNS],
            *INGESTION_COLUMNS,
        )
    )


def empty_result(spark: SparkSession) -> DataFrame:
    """A batch whose files hold no records: no rows, no schema change."""
    return spark.createDataFrame([], "ConversationId string")
