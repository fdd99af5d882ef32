"""The seed notebook's way of ingesting the export, kept as the benchmark's baseline.

Written the way such notebooks are: everything on the driver, one request at a time
(``requests.get`` of each page, then of each file), ``fastavro`` decoding every record into Python
dicts, ``spark.createDataFrame(rows, schema)`` with an explicit schema, and a Delta append per
page (appending once at the end would hold the whole export in driver memory). It is honest, not
sabotaged: one HTTP session with keep-alive, whole files read into memory as notebooks do, and the
explicit schema (the ``Entities`` element type spark-avro reports) so Spark does not infer types.
Not part of the job: nothing imports it but the benchmark.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import fastavro
import requests
from pyspark.sql import SparkSession
from pyspark.sql import types as T


@dataclass
class BaselineResult:
    pages: int = 0
    files: int = 0
    bytes: int = 0
    rows: int = 0


def entities_schema(spark: SparkSession, sample_avro_path: str) -> T.StructType:
    """The conversation struct, as a notebook author would get it: from one sample file."""
    schema = spark.read.format("avro").load(sample_avro_path).schema
    entities = schema["Entities"].dataType
    assert isinstance(entities, T.ArrayType) and isinstance(entities.elementType, T.StructType)
    return entities.elementType


def run_notebook_baseline(
    spark: SparkSession,
    api_base_url: str,
    token_url: str,
    client_id: str,
    client_secret: str,
    schema: T.StructType,
    table: str,
) -> BaselineResult:
    """Page through the export from the start and append every conversation to ``table``."""
    result = BaselineResult()
    http = requests.Session()
    token = http.post(
        token_url,
        data={"client_id": client_id, "client_secret": client_secret, "grant_type": "client_credentials"},
        timeout=60,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    continuation: str | None = None
    while True:
        page = http.post(
            f"{api_base_url}/rawdata/export/page",
            json={"continuationToken": continuation, "format": "avro"},
            headers=headers,
            timeout=60,
        ).json()
        result.pages += 1
        files = page.get("files") or []
        if not files:
            break
        rows: list[dict[str, Any]] = []
        for f in files:
            body = requests.get(f["url"], timeout=300).content
            result.files += 1
            result.bytes += len(body)
            for record in fastavro.reader(io.BytesIO(body)):
                rows.extend(record["Entities"] or [])  # type: ignore[index, call-overload, arg-type]
        if rows:
            spark.createDataFrame(rows, schema).write.format("delta").mode("append").save(table)
            result.rows += len(rows)
        nxt = page.get("continuationToken")
        if not nxt or nxt == continuation:
            break
        continuation = nxt
    http.close()
    return result
