"""Shared fixtures. Spark is started once per test run (session scope) and only by tests that
ask for it; unit tests never import pyspark's JVM side."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture
def caplog_text(caplog):
    """``caplog``'s records as plain text (message and exception), whatever formatter its handler has.

    Not ``caplog.text``: once PySpark has raised an error with a query context it holds
    non-propagating ``PySparkLogger``s; pytest (9+) attaches its capturing handler to every
    non-propagating logger, and ``PySparkLogger.addHandler`` sets its JSON formatter on that shared
    handler, which escapes every quote for all later tests.
    """
    plain = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    return lambda: "\n".join(plain.format(record) for record in caplog.records)


@pytest.fixture(scope="session")
def spark_event_log(tmp_path_factory):
    """The event log folder of the ``spark`` fixture's session (job descriptions are checked there)."""
    return tmp_path_factory.mktemp("spark-events")


@pytest.fixture(scope="session")
def spark(spark_event_log):
    """One local SparkSession with the real spark-avro and Delta jars for the whole run.

    Reuses an active session (never stops one it did not create).
    """
    from pyspark.sql import SparkSession

    from repo361_ingest.spark import local_builder

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    os.environ.setdefault("REPO361_SHUFFLE_PARTITIONS", "2")
    session = (
        local_builder("repo361-ingest-tests", master="local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", spark_event_log.as_uri())
        .config("spark.eventLog.rolling.enabled", "false")  # one plain JSON-lines file
        .config("spark.eventLog.compress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on loopback (an S3-compatible store for the staging tests)."""
    moto_server = pytest.importorskip("moto.server", reason="pip install -e '.[dev]' (moto)")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
