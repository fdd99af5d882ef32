"""Staged Avro files -> rows per target table, with the ``_`` ingestion columns.

spark-avro reads every file of one load with a single Avro schema. So the writer schemas of a
batch's files (from the download manifest) are merged into one *reader* schema
(:mod:`repo361_ingest.avro_schema`) and all files of a target are read in one load with
``avroSchema`` set to it: Avro's schema resolution decodes each file with its own writer schema, so
a field only newer files carry (also deep inside arrays of structs) arrives, and is null for
older files' rows.

Rows: when the records have a top-level ``Entities`` array of records (conversation details, and
any Genesys-style paged dataset), one row per element; otherwise one row per Avro record with its
top-level fields. Then instants are normalised (:mod:`repo361_ingest.transform`) and the ingestion
columns added.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import re
from itertools import chain
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from repo361_ingest.avro_schema import entities_field, is_conversation_schema, merge_schemas
from repo361_ingest.datasets import Routing
from repo361_ingest.errors import IngestError, SchemaConflictError
from repo361_ingest.transform import (
    TimestampRule, cast_failure, cast_instants, instant_error, normalise_instants,
)

log = logging.getLogger(__name__)

ENTITIES = "Entities"
INGESTION_COLUMNS = ("_source_file", "_batch_id", "_page_seq", "_ingested_at", "_run_id")


class ReadError(IngestError):
    """spark-avro could not read a batch's files (corrupt data, a value that does not parse)."""


@dataclass(frozen=True)
class StagedFile:
    """A verified staged file: where Spark reads it, and what it came from."""

    spark_path: str
    staged_name: str  # the file's base name in staging, unique within a batch
    source_name: str  # the name the API gave it
    page_seq: int
    schema_fingerprint: str
    records: int
    writer_schema: str | None = None  # JSON; the manifest sends it once per fingerprint and task


@dataclass(frozen=True)
class BatchInfo:
    run_id: str
    batch_id: str
    ingested_at: dt.datetime


@dataclass(frozen=True)
class ReadOptions:
    timestamp_rule: TimestampRule = TimestampRule()
    # Parse instants with one nested cast per column (fast) instead of per-field lambdas (exact in
    # any session). Only where transform.cast_is_exact(spark) holds.
    cast_instants: bool = False


def writer_schemas(files: Sequence[StagedFile]) -> dict[str, str]:
    """Writer schema JSON per fingerprint (any file of a fingerprint may carry it)."""
    found: dict[str, str] = {}
    for f in files:
        if f.writer_schema and f.schema_fingerprint not in found:
            found[f.schema_fingerprint] = f.writer_schema
    missing = sorted({f.source_name for f in files if f.records and f.schema_fingerprint not in found})
    if missing:
        raise IngestError(f"no writer schema in the download manifest for files {missing[:5]}")
    return found


def is_conversation_file(file: StagedFile, schemas: dict[str, str]) -> bool:
    schema = schemas.get(file.schema_fingerprint)
    return schema is not None and is_conversation_schema(schema)


def reader_schema(files: Sequence[StagedFile], schemas: dict[str, str]) -> object:
    """The merged reader schema of ``files`` (those with records); names the files on a conflict."""
    fingerprints = list(dict.fromkeys(f.schema_fingerprint for f in files if f.records))
    try:
        return merge_schemas(schemas[fp] for fp in fingerprints)
    except SchemaConflictError as exc:
        names = sorted(f.source_name for f in files if f.records)
        raise SchemaConflictError(f"{exc} (files {names[:5]}{' ...' if len(names) > 5 else ''})") from None


def read_entities(
    spark: SparkSession, files: Sequence[StagedFile], info: BatchInfo, options: ReadOptions | None = None
) -> DataFrame:
    """Read the staged files of one target in one load and produce its rows."""
    options = options or ReadOptions()
    readable = [f for f in files if f.records > 0]  # a zero-record file has nothing to read
    if not readable:
        return empty_result(spark)
    schemas = writer_schemas(files)
    merged = reader_schema(readable, schemas)
    with read_errors(readable):
        df = (
            spark.read.format("avro")
            .option("avroSchema", json.dumps(merged))
            .load([f.spark_path for f in readable])
        )
    staged = F.col("_metadata.file_name").alias("_staged_name")
    rule = options.timestamp_rule
    if entities_field(merged) is not None and options.cast_instants:
        entities = cast_instants(F.col(ENTITIES), df.schema[ENTITIES].dataType, rule)
        rows = df.select(F.explode(entities).alias("_entity"), staged).select("_entity.*", "_staged_name")
    elif entities_field(merged) is not None:
        rows = df.select(F.explode(ENTITIES).alias("_entity"), staged).select("_entity.*", "_staged_name")
        rows = rows.transform(normalise_instants(rule))
    else:
        rows = df.select("*", staged).transform(normalise_instants(rule, options.cast_instants))
    return with_ingestion_columns(rows, files, info)


@dataclass(frozen=True)
class TargetRows:
    """The rows one target table gets from a batch."""

    target: str
    frame: DataFrame
    files: tuple[StagedFile, ...]

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)


def read_batch(
    spark: SparkSession,
    files: Sequence[StagedFile],
    info: BatchInfo,
    routing: Routing,
    options: ReadOptions | None = None,
) -> list[TargetRows]:
    """The rows per target table of the batch, the conversation table last.

    The conversation table is always in the list (with no rows when the batch has none for it),
    so its commit, which carries the resume position, can be the batch's last write. Another
    table appears only when the batch has records for it.
    """
    schemas = writer_schemas(files)
    groups = routing.route(files, lambda f: f.source_name, lambda f: is_conversation_file(f, schemas))
    out = [
        TargetRows(target, read_entities(spark, group, info, options), tuple(group))
        for target, group in groups
        if target == routing.table or any(f.records for f in group)
    ]
    if routing.table not in (t.target for t in out):
        out.append(TargetRows(routing.table, empty_result(spark), ()))
    for t in out:
        if t.target != routing.table:
            log.info("batch %s: %d file(s) routed to %s", info.batch_id, len(t.files), t.target)
    return out


def with_ingestion_columns(df: DataFrame, files: Sequence[StagedFile], info: BatchInfo) -> DataFrame:
    """Attach ``_source_file`` and ``_page_seq`` (looked up by staged name) and the batch's constants.

    The lookup is a literal map in the projection, not a join with a lookup DataFrame: no
    ``createDataFrame`` round trip per batch and no join operator over rows this wide.
    """
    name = F.col("_staged_name")
    source_file = F.create_map(*chain.from_iterable((F.lit(f.staged_name), F.lit(f.source_name)) for f in files))
    page_seq = F.create_map(*chain.from_iterable((F.lit(f.staged_name), F.lit(f.page_seq)) for f in files))
    return df.select(
        *[F.col(f"`{c}`") for c in df.columns if c != "_staged_name" and c not in INGESTION_COLUMNS],
        source_file[name].alias("_source_file"),
        F.lit(info.batch_id).alias("_batch_id"),
        page_seq[name].cast(T.LongType()).alias("_page_seq"),
        F.lit(info.ingested_at).cast(T.TimestampType()).alias("_ingested_at"),
        F.lit(info.run_id).alias("_run_id"),
    )


def empty_result(spark: SparkSession) -> DataFrame:
    """A batch whose files hold no records: no rows, no schema change."""
    return spark.createDataFrame([], "ConversationId string")


# ---- Spark read errors -> IngestError naming the files -------------------------------------------

_READ_MARKERS = ("avro", "Avro", "repo361-instant")


@contextlib.contextmanager
def read_errors(files: Sequence[StagedFile], diagnose: Callable[[], str | None] | None = None) -> Iterator[None]:
    """Turn a Spark failure while reading ``files`` into a :class:`ReadError` naming them.

    The message carries the API's file names and the first line of the cause, with staging paths
    replaced by those names: no local layout, no Java stack trace. Other errors pass unchanged.
    ``diagnose`` names the field when a fast instant cast failed (see :func:`find_bad_instant`).
    """
    try:
        yield
    except IngestError:
        raise
    except Exception as exc:
        converted = as_read_error(exc, files, diagnose)
        if converted is None:
            raise
        raise converted from None


def as_read_error(
    exc: BaseException, files: Sequence[StagedFile], diagnose: Callable[[], str | None] | None = None
) -> ReadError | None:
    """A ReadError for ``exc`` if it is a failure reading ``files``; None for anything else."""
    text = str(exc)
    involved = [f for f in files if f.staged_name in text]
    own = instant_error(text)
    bad_value = cast_failure(text) if own is None else None
    if bad_value is not None:
        own = (diagnose() if diagnose else None) or (
            f"a field read as an instant holds {{{bad_value}}}, not an ISO-8601 instant")
    if own is None and not involved and not any(m in text for m in _READ_MARKERS):
        return None
    named = involved or list(files)
    names = sorted({f.source_name for f in named})
    if own is not None:
        cause = own
    else:
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        for f in files:
            first = first.replace(f.spark_path, f.source_name)
            first = re.sub(r"\S*" + re.escape(f.staged_name), f.source_name, first)
        cause = first[:300]
    listing = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
    return ReadError(f"reading file(s) {listing} failed: {cause}")


def find_bad_instant(
    spark: SparkSession, files: Sequence[StagedFile], routing: Routing, options: ReadOptions
) -> str | None:
    """Which field holds the instant a fast cast failed on: re-read ``files`` the exact way.

    Only called after a batch already failed, so its cost (one more pass over the batch) is paid
    for the message alone. None when the exact way finds nothing (or fails for another reason).
    """
    exact = dataclasses.replace(options, cast_instants=False)
    info = BatchInfo("diagnose", "diagnose", dt.datetime.now(dt.timezone.utc))
    try:
        targets = read_batch(spark, files, info, routing, exact)
    except Exception:
        return None
    for target in targets:
        try:
            target.frame.write.format("noop").mode("overwrite").save()
        except Exception as exc:
            found = instant_error(str(exc))
            if found:
                return found
    return None
