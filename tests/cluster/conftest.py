"""The ``standalone_cluster`` fixture: a master and a worker JVM on loopback, always stopped."""

from __future__ import annotations

import os
import subprocess

import pytest

from cluster.standalone import Cluster, free_port, spark_home, stop_daemon, wait_for_worker, write_executor_python


def pytest_collection_modifyitems(items):
    for item in items:
        if "/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.spark)
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory):
    """Master + one worker (1 core, 1 GiB) as separate processes; stopped at teardown, also on error."""
    work = tmp_path_factory.mktemp("standalone")
    home = spark_home()
    env = dict(os.environ, SPARK_HOME=str(home), SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
    env.pop("PYSPARK_GATEWAY_PORT", None)
    spark_class = str(home / "bin" / "spark-class")
    master_port, master_ui, worker_ui = free_port(), free_port(), free_port()
    master_url = f"spark://127.0.0.1:{master_port}"
    procs: list[subprocess.Popen] = []

    def start(name: str, args: list[str]) -> None:
        with open(work / f"{name}.log", "wb") as log:  # the child keeps its own descriptor
            procs.append(subprocess.Popen(
                [spark_class, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,  # own group: killpg reaches executors
            ))

    try:
        start("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                         "--port", str(master_port), "--webui-port", str(master_ui)])
        start("worker", ["org.apache.spark.deploy.worker.Worker", master_url, "--host", "127.0.0.1",
                         "--cores", "1", "--memory", "1g", "--webui-port", str(worker_ui),
                         "--work-dir", str(work / "worker")])
        wait_for_worker(master_ui, procs, work)
        yield Cluster(master_url, write_executor_python(work / "executor-python"), work)
    finally:
        for proc in reversed(procs):
            stop_daemon(proc)
