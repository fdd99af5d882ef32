"""Helpers for a real Spark standalone cluster on loopback: one master and one worker, each its own JVM.

Started from the installed pyspark (``spark-class``), so it is the very Spark the job uses. The
worker's executors run Python through :data:`EXECUTOR_PYTHON_WRAPPER`, an interpreter that cannot see
the editable install: the package can only come from what ``spark-submit --py-files`` shipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass(frozen=True)
class Cluster:
    master_url: str
    executor_python: Path
    work_dir: Path


def stop_daemon(proc: subprocess.Popen) -> None:
    """Stop a daemon and everything it started (the worker's executor JVMs share its group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def write_executor_python(path: Path) -> Path:
    """An executor interpreter without the editable install.

    ``python -S`` skips the ``site`` module, so no ``.pth`` file is processed: the editable
    install is exactly such a file (``__editable__.repo361_ingest-*.pth`` adding ``lib/``). The
    venv's site-packages (pyspark, pyarrow, requests, fastavro, ...) is put back through
    ``PYTHONPATH``, whose entries are added as they are, without reading ``.pth`` files. Spark
    then prepends the shipped ``--py-files`` archive; nothing else provides ``repo361_ingest``.
    """
    site_packages = sysconfig.get_paths()["purelib"]
    path.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{site_packages}" exec "{sys.executable}" -S "$@"\n'
    )
    path.chmod(0o755)
    return path


def wait_for_worker(master_ui: int, procs: list[subprocess.Popen], work: Path, timeout: float = 120) -> None:
    """Poll the master's JSON status until one worker is ALIVE (or a daemon died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc, name in zip(procs, ("master", "worker")):
            if proc.poll() is not None:
                raise RuntimeError(f"spark {name} exited: {(work / (name + '.log')).read_text()[-3000:]}")
        try:
            state = requests.get(f"http://127.0.0.1:{master_ui}/json/", timeout=2).json()
            if int(state.get("aliveworkers", 0)) >= 1:
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError("the standalone worker did not register with the master in time")


def build_pyfiles(out_dir: Path) -> Path:
    """Build the wheel from a copy of the sources and return it renamed to ``.zip``.

    Spark puts only ``.zip``/``.egg``/``.jar`` py-files on the executors' ``sys.path``
    (``SparkContext.PACKAGE_EXTENSIONS``); a ``.whl`` is shipped but never imported from. A pure
    Python wheel is a zip archive with the package at its root, so the same file under a ``.zip``
    name is importable. The copy keeps ``pip wheel`` from writing ``build/`` into the work tree.
    """
    src = out_dir / "src"
    shutil.copytree(ROOT / "lib", src / "lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    wheels = out_dir / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(src)],
        check=True, capture_output=True,
    )
    (wheel,) = wheels.glob("repo361_ingest-*.whl")
    shipped = out_dir / "repo361_ingest.zip"
    shutil.copy(wheel, shipped)
    return shipped
