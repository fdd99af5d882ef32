"""The job through Spark Connect: what Databricks serverless and shared clusters require.

A Spark Connect server is started as its own process with ``spark-submit --class
...SparkConnectServer`` (what ``sbin/start-connect-server.sh`` does in a full Spark distribution;
pip's pyspark ships the server jar but not that script), with spark-avro and Delta on the server
side from ``conf/spark-defaults.conf``. The test process talks to it only over gRPC: any RDD,
``sparkContext`` or ``_jvm`` use in the job path fails here.

The server's Python workers run an interpreter that cannot see the editable install (see
``tests/cluster/standalone.py``); the client ships the package with
``spark.addArtifacts(<wheel as .zip>, pyfile=True)``, the Connect counterpart of ``--py-files``.

``SparkSession.builder.remote("local[2]")`` would start the server inside this process instead,
but only when no classic session exists in it, and the suite's session-scoped ``spark`` fixture
usually does: hence the separate process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repo361_ingest.emulator import Emulator
from repo361_ingest.run import run_ingest
from repo361_ingest.watermark import history, read_position

from cluster.standalone import build_pyfiles, write_executor_python
from helpers import emu_credentials

pytestmark = [pytest.mark.spark, pytest.mark.connect]

ROOT = Path(__file__).resolve().parents[2]
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Spark Connect server exited: {log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError("Spark Connect server did not open its port in time")


@pytest.fixture(scope="module")
def connect_session(tmp_path_factory):
    """A Connect client session to a local server process; the server is always stopped."""
    pytest.importorskip("grpc", reason="Spark Connect needs grpcio (pip install -e '.[dev]')")
    import pyspark
    from pyspark.sql import SparkSession

    work = tmp_path_factory.mktemp("connect")
    port = _free_port()
    # Connect's Python UDFs run PYSPARK_PYTHON of the server's environment (not spark.pyspark.python).
    executor_python = write_executor_python(work / "executor-python")
    env = dict(os.environ, SPARK_HOME=str(Path(pyspark.__file__).parent), SPARK_LOCAL_IP="127.0.0.1",
               PYSPARK_PYTHON=str(executor_python))
    for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED"):
        env.pop(name, None)
    command = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--class", SERVER_CLASS,
        "--master", "local[2]",
        "--properties-file", "conf/spark-defaults.conf",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.driver.memory=1g",
        "spark-internal",
    ]
    log = work / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_port(port, server, log)
        pyfiles = build_pyfiles(work / "dist")
        # builder.remote() switches the whole process to Connect mode through environment variables
        # (SPARK_CONNECT_MODE_ENABLED, SPARK_REMOTE) that every later test and job subprocess would
        # inherit: restore them, or the rest of the suite runs against a Connect session that is gone.
        saved = {name: os.environ.get(name) for name in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")}
        try:
            session = SparkSession.builder.remote(f"sc://127.0.0.1:{port}").create()
            session.addArtifacts(str(pyfiles), pyfile=True)
            yield session
            session.stop()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


def test_run_ingest_through_spark_connect(connect_session, make_config):
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    spark = connect_session
    assert isinstance(spark, ConnectSession)
    with Emulator(conversations=18, pages=3, files_per_page=2, records_per_file=2, seed=29) as emu:
        config = make_config(emu, batch_max_pages=2)
        summary = run_ingest(spark, config, emu_credentials(emu))
        assert summary.outcome == "success"
        assert (summary.batches, summary.files, summary.rows) == (2, 6, 18)

        frame = spark.read.format("delta").load(config.table)
        rows = frame.select("ConversationId", "_source_file", "_page_seq").collect()
        assert sorted(r[0] for r in rows) == sorted(emu.conversation_ids())
        assert {(r[1], r[2]) for r in rows} == {(f.name, f.page + 1) for f in emu.files()}
        assert read_position(spark, config.watermark_table, config.source).page_seq == 3
        assert [r.page_seq for r in history(spark, config.watermark_table, config.source)] == [3, 2]

        # A second run through Connect resumes from the watermark and finds nothing new.
        again = run_ingest(spark, config, emu_credentials(emu))
        assert (again.outcome, again.rows) == ("no_new_data", 0)
        assert sorted(r[0] for r in frame.select("ConversationId").collect()) == sorted(emu.conversation_ids())
