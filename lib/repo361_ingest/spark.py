"""Get the SparkSession: reuse an active one (Databricks, spark-submit), or build a local one.

Only a session this module builds gets the packages config; on Databricks the runtime already
has spark-avro and Delta, and an existing session is never reconfigured or stopped.
"""

from __future__ import annotations

import logging
import os
import sys

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# The pinned trio: pyspark 4.0.1 (Scala 2.13) + spark-avro 4.0.1 + delta-spark 4.0.1.
# conf/spark-defaults.conf and scripts/fetch_jvm_packages.sh list the same coordinates.
SCALA_BINARY = "2.13"
SPARK_VERSION = "4.0.1"
DELTA_VERSION = "4.0.1"
JVM_PACKAGES = (
    f"org.apache.spark:spark-avro_{SCALA_BINARY}:{SPARK_VERSION}",
    f"io.delta:delta-spark_{SCALA_BINARY}:{DELTA_VERSION}",
)
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def under_spark_submit() -> bool:
    """True when spark-submit (or a notebook kernel) already launched the JVM for this process.

    Then the master and ``spark.jars.packages`` come from spark-submit's own flags or
    ``--properties-file conf/spark-defaults.conf``; setting them here would be ignored or wrong.
    """
    return "PYSPARK_GATEWAY_PORT" in os.environ


def local_builder(app_name: str = "repo361-ingest", master: str | None = None) -> SparkSession.Builder:
    """A builder with spark-avro and Delta from the packages config (resolved by Spark's Ivy,
    which reads the local Maven repository first: ``make setup`` pre-fetches them there)."""
    builder = SparkSession.builder.appName(app_name)
    for key, value in DELTA_CONF.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    if under_spark_submit() and master is None:
        return builder
    # Python workers must run this interpreter (the venv with the package), not the first
    # python3 on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        builder.master(master or os.environ.get("REPO361_SPARK_MASTER", "local[*]"))
        .config("spark.jars.packages", ",".join(JVM_PACKAGES))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("REPO361_SHUFFLE_PARTITIONS", "8"))
    )


def get_session(app_name: str = "repo361-ingest") -> SparkSession:
    """The active session if there is one, else a new local one with the packages config."""
    active = SparkSession.getActiveSession()
    if active is not None:
        log.info("reusing the active SparkSession (Spark %s)", active.version)
        return active
    return local_builder(app_name).getOrCreate()
