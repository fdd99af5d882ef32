"""spark-submit of the real job to a standalone master + worker, the package shipped as --py-files.

The driver is the spark-submit process, the downloads run in an executor JVM started by the
worker, and that executor's Python cannot import the editable install: a wrong import path,
something unpicklable, or driver-only state in the executor path fails here and not in local[*].
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from repo361_ingest.emulator import Emulator

from cluster.standalone import ROOT, VENV_BIN, build_pyfiles, spark_home

pytestmark = [pytest.mark.spark, pytest.mark.cluster]


def test_executor_python_cannot_see_the_editable_install(standalone_cluster):
    """The premise of the cluster test: only the shipped archive can provide the package."""
    python = str(standalone_cluster.executor_python)
    probe = subprocess.run([python, "-c", "import repo361_ingest"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'repo361_ingest'" in probe.stderr
    deps = subprocess.run([python, "-c", "import pyspark, pyarrow, requests, fastavro, tenacity"],
                          capture_output=True, text=True)
    assert deps.returncode == 0, deps.stderr


def test_spark_submit_to_standalone_cluster_ingests_every_conversation(standalone_cluster, spark, tmp_path):
    pyfiles = build_pyfiles(tmp_path / "dist")
    table, watermark, staging = tmp_path / "conversations", tmp_path / "watermark", tmp_path / "staging"
    with Emulator(conversations=24, pages=3, files_per_page=2, records_per_file=2, seed=77) as emu:
        env = dict(os.environ, SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP="127.0.0.1",
                   REPO361_CLIENT_ID=emu.client_id,
                   REPO361_CLIENT_SECRET=emu.client_secret)
        for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
            env.pop(name, None)
        command = [
            str(VENV_BIN / "spark-submit"),
            "--master", standalone_cluster.master_url,
            "--properties-file", "conf/spark-defaults.conf",
            "--py-files", str(pyfiles),
            "--conf", f"spark.pyspark.python={standalone_cluster.executor_python}",
            "--conf", f"spark.pyspark.driver.python={sys.executable}",
            "--conf", "spark.executor.memory=512m",
            "--conf", "spark.cores.max=1",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=2",
            "jobs/ingest_conversations.py",
            "--api-base-url", emu.api_base_url, "--token-url", emu.token_url,
            "--table", str(table), "--watermark-table", str(watermark), "--staging", str(staging),
            "--set", "batch_max_pages=2",
        ]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        expected_ids = emu.conversation_ids()

    assert done.returncode == 0, done.stderr[-4000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("{"), f"the JSON summary is not the last stdout line: {done.stdout[-2000:]}"
    summary = json.loads(last)
    assert summary["outcome"] == "success"
    assert (summary["pages"], summary["batches"], summary["files"], summary["rows"]) == (4, 2, 6, 24)
    assert summary["end_page_seq"] == 3
    # spark-submit merges the Python driver's stderr into its stdout, interleaved with log4j lines.
    assert "repo361-ingest: success: 4 page(s), 6 file(s), 24 row(s)" in done.stdout + done.stderr

    # The downloads ran in an executor the worker launched (its own JVM and Python workers).
    executor_logs = list((standalone_cluster.work_dir / "worker").glob("app-*/*/stderr"))
    assert executor_logs, "no executor was launched by the standalone worker"

    rows = spark.read.format("delta").load(str(table)).select("ConversationId", "_page_seq").collect()
    assert sorted(r[0] for r in rows) == sorted(expected_ids)
    assert {r[1] for r in rows} == {1, 2, 3}
    positions = spark.read.format("delta").load(str(watermark)).select("page_seq").collect()
    assert sorted(r[0] for r in positions) == [2, 3]
