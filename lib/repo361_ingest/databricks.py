"""Databricks entry points: the notebook's one call, its chart data, and the wheel task's entry.

The notebook (``notebooks/ingest_repo361.py``) defines nothing reusable: it declares widgets and
calls :func:`run_from_widgets`, then shows :func:`conversations_per_day`. The bundle's
``python_wheel_task`` calls :func:`job_entry`, which is ``repo361-ingest`` with a failing exit code
turned into a failed task. Only the DataFrame API is used, so both run on serverless and shared
clusters (Spark Connect) as well as on classic clusters.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from repo361_ingest.config import IngestConfig, load_config
from repo361_ingest.credentials import resolve_credentials

# Widget name -> (default, label). The defaults match conf/databricks.yaml.
WIDGETS: dict[str, tuple[str, str]] = {
    "table": ("main.repo361.conversations", "Target table"),
    "watermark_table": ("main.repo361.watermark", "Watermark table"),
    "staging": ("/Volumes/main/repo361/staging", "Staging (Volume path)"),
    "secret_scope": ("repo361", "Secret scope"),
    "secret_client_id_key": ("client-id", "Secret key: client id"),
    "secret_client_secret_key": ("client-secret", "Secret key: client secret"),
    "max_pages": ("", "Max pages (empty: all)"),
    "api_base_url": ("https://api.repo361.com", "API base URL"),
    "token_url": ("https://api.repo361.com/security/oauth2/token", "Token URL"),
}


def declare_widgets(dbutils: Any) -> None:
    """Create the notebook's text widgets (job parameters of the same names override them)."""
    for name, (default, label) in WIDGETS.items():
        dbutils.widgets.text(name, default, label)


def config_from_widgets(dbutils: Any) -> IngestConfig:
    """The run's config: built-in defaults < widget values (empty widgets are left out)."""
    values = {name: dbutils.widgets.get(name) for name in WIDGETS}
    values = {k: v.strip() for k, v in values.items() if v is not None and v.strip()}
    # Ignore any conf/ folder next to the notebook: widgets (and job parameters) are the config.
    return load_config(None, values, [], environ={}, cwd=Path("/nonexistent-repo361-conf"))


def run_from_widgets(spark: SparkSession, dbutils: Any) -> dict[str, Any]:
    """Run the job with the widgets' config and the secret scope's credentials; the summary dict."""
    from repo361_ingest import logs
    from repo361_ingest.run import run_ingest

    config = config_from_widgets(dbutils)
    logs.configure(config.log_level)
    credentials = resolve_credentials(config, dbutils=dbutils)
    return run_ingest(spark, config, credentials).to_dict()


def conversations_per_day(spark: SparkSession, table: str) -> DataFrame:
    """Ingested conversations per day (of ``ConversationStart``) and media type.

    A conversation with several media types (a callback that became a voice call) counts once
    under each of them.
    """
    from repo361_ingest.sink import is_table_name

    frame = spark.read.table(table) if is_table_name(table) else spark.read.format("delta").load(table)
    participants = frame.select(
        F.to_date("ConversationStart").alias("day"), "ConversationId",
        F.explode_outer("Participants").alias("p"),
    )
    sessions = participants.select("day", "ConversationId", F.explode_outer("p.Sessions").alias("s"))
    return (
        sessions.select("day", "ConversationId", F.col("s.MediaType").alias("media_type"))
        .groupBy("day", "media_type")
        .agg(F.countDistinct("ConversationId").alias("conversations"))
        .orderBy("day", "media_type")
    )


def job_entry() -> None:
    """``python_wheel_task`` entry point: ``repo361-ingest`` with sys.argv, failing the task on error."""
    from repo361_ingest.cli import main

    code = main(sys.argv[1:])
    if code:
        raise SystemExit(code)
