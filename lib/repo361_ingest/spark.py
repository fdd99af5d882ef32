"""Get the SparkSession: reuse an active one (Databricks, spark-submit), or build a local one.

Only a session this module builds gets the packages config; on Databricks the runtime already
has spark-avro and Delta, and an existing session is never reconfigured or stopped.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys

from pyspark.sql import SparkSession
from pyspark.version import __version__ as pyspark_version

from repo361_ingest.errors import ConfigError

log = logging.getLogger(__name__)

# The JVM packages must match the installed pyspark: its Scala binary version, its own spark-avro
# and the delta-spark release built for it. pyspark 4.0.x (the pinned default, Databricks 17.x)
# is Scala 2.13; pyspark 3.5.x (Databricks 15.4/16.4 LTS) is Scala 2.12 with Delta 3.3.
# conf/spark-defaults.conf lists the 4.0.1 coordinates for spark-submit;
# scripts/fetch_jvm_packages.sh pre-fetches whatever JVM_PACKAGES says for the installed pyspark.
_SCALA_AND_DELTA = {"4.0": ("2.13", "4.0.1"), "3.5": ("2.12", "3.3.2")}


def jvm_packages(spark_version: str) -> tuple[str, ...]:
    """The spark-avro and delta-spark coordinates for a Spark version (e.g. ``"3.5.6"``)."""
    minor = ".".join(spark_version.split(".")[:2])
    if minor not in _SCALA_AND_DELTA:
        raise ConfigError(
            f"pyspark {spark_version} has no known spark-avro/delta-spark pairing: use 4.0.x or 3.5.x"
            f" (known: {', '.join(sorted(_SCALA_AND_DELTA))})"
        )
    scala, delta = _SCALA_AND_DELTA[minor]
    installed = _installed_delta()
    if installed and installed.split(".")[:2] == delta.split(".")[:2]:
        delta = installed  # the JVM package released with the installed delta-spark Python package
    return (
        f"org.apache.spark:spark-avro_{scala}:{spark_version}",
        f"io.delta:delta-spark_{scala}:{delta}",
    )


def _installed_delta() -> str | None:
    try:
        return importlib.metadata.version("delta-spark")
    except importlib.metadata.PackageNotFoundError:
        return None


SPARK_VERSION: str = pyspark_version
_MINOR = ".".join(SPARK_VERSION.split(".")[:2])
# For an unknown pyspark these stay empty: importing still works (Databricks reuses its own
# session), and local_builder fails with jvm_packages' message.
JVM_PACKAGES: tuple[str, ...] = jvm_packages(SPARK_VERSION) if _MINOR in _SCALA_AND_DELTA else ()
SCALA_BINARY = _SCALA_AND_DELTA.get(_MINOR, ("", ""))[0]
DELTA_VERSION = JVM_PACKAGES[1].rsplit(":", 1)[1] if JVM_PACKAGES else ""
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
        .config("spark.jars.packages", ",".join(JVM_PACKAGES or jvm_packages(SPARK_VERSION)))
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("REPO361_SHUFFLE_PARTITIONS", "8"))
        # Delta rebuilds a table's state (needed by every txn-checked commit and DESCRIBE) in 50
        # partitions by default: on a local machine that is 50 tiny tasks per commit.
        .config("spark.databricks.delta.snapshotPartitions", os.environ.get("REPO361_SHUFFLE_PARTITIONS", "8"))
    )


def get_session(app_name: str = "repo361-ingest") -> SparkSession:
    """The active session if there is one, else a new local one with the packages config."""
    active = SparkSession.getActiveSession()
    if active is not None:
        log.info("reusing the active SparkSession (Spark %s)", active.version)
        return active
    return local_builder(app_name).getOrCreate()


JOB_DESCRIPTION_KEY = "spark.job.description"


def describe_jobs(spark: SparkSession, text: str | None) -> None:
    """Label the Spark jobs that follow (Spark UI, event log) with ``text``; None clears it.

    ``SparkContext.setJobDescription`` is not available on Spark Connect, serverless or shared
    clusters. A session conf of the same key works on classic and Connect sessions alike: Spark SQL
    copies every ``spark.*`` session conf into the job's local properties when it runs a query,
    and ``spark.job.description`` is the property the UI shows. Callers pass page numbers and batch
    ids only, never a URL, a token or a file's signed location.
    """
    try:
        if text is None:
            spark.conf.unset(JOB_DESCRIPTION_KEY)
        else:
            spark.conf.set(JOB_DESCRIPTION_KEY, text[:200])
    except Exception:  # noqa: BLE001 - a label must never fail a run (e.g. a locked-down conf)
        log.debug("cannot set the Spark job description", exc_info=True)
