"""Named crash points: a test-only hook that SIGKILLs the job at an exact step of a run.

Crash safety (DESIGN §6) is proved by killing the job where it hurts most and checking that the
rerun loses and duplicates nothing. ``hit("after_target_append")`` does nothing unless the
environment asks for that point::

    REPO361_CRASH_AT=<point>[:<n>]      kill at the n-th time (default 1st) the run reaches <point>

When it matches, the process is killed with SIGKILL: no ``finally``, no atexit, no flush, exactly
like a pre-empted node. What is killed:

* the driver's whole process group when the driver armed it (:func:`arm`, called by
  ``cli.execute_run`` before Spark starts, and only when the driver leads its own process group,
  as the crash harness starts it). The group holds the driver and the Spark JVM; the executors'
  Python workers (PySpark's daemon makes its own group) kill that group too, then themselves,
  so a kill inside a download (``mid_download``) takes the whole job down, as a lost cluster
  would;
* otherwise only the calling process (never a group it does not lead: a developer's shell or
  pytest runner is never hit).

Occurrences are counted across processes (the driver and the executors' Python workers) in a
small file under ``REPO361_CRASH_STATE`` (a folder the harness makes), because executors are
separate processes with their own module state; without it the count is per process.
"""

from __future__ import annotations

import fcntl
import os
import signal

CRASH_AT_ENV = "REPO361_CRASH_AT"
STATE_ENV = "REPO361_CRASH_STATE"
PGID_ENV = "REPO361_CRASH_PGID"

# Every point the job passes, in run order. Documented in the README "Crash safety" section.
POINTS = (
    "after_page_fetch",  # driver (pager thread): a page answered, nothing downloaded yet
    "mid_download",  # executor: part of a file written to staging
    "after_download",  # driver: every file of the batch staged, nothing read
    "after_target_append",  # driver: the batch's Delta commit is in, no watermark row yet
    "after_watermark_append",  # driver: the watermark row is in, staging not cleaned
    "after_watermark_repair",  # driver: a repaired watermark row written at start-up
)

_local_counts: dict[str, int] = {}


def parse(spec: str | None) -> tuple[str, int] | None:
    """``"point:3"`` -> ``("point", 3)``; ``"point"`` -> ``("point", 1)``; empty -> None."""
    if not spec:
        return None
    name, _, nth = spec.strip().partition(":")
    if name not in POINTS:
        raise ValueError(f"{CRASH_AT_ENV}={spec!r}: unknown crash point; known: {', '.join(POINTS)}")
    count = int(nth) if nth else 1
    if count < 1:
        raise ValueError(f"{CRASH_AT_ENV}={spec!r}: the occurrence must be >= 1")
    return name, count


def arm() -> None:
    """Let executors kill the whole job: record the driver's process group if it leads one.

    Must run before the Spark JVM starts, so the JVM and its Python workers inherit it.
    """
    if os.environ.get(CRASH_AT_ENV) and os.getpgrp() == os.getpid():
        os.environ[PGID_ENV] = str(os.getpgrp())


def _occurrence(point: str) -> int:
    """The number of times ``point`` was reached so far in this job (this one included)."""
    state = os.environ.get(STATE_ENV)
    if not state:
        _local_counts[point] = _local_counts.get(point, 0) + 1
        return _local_counts[point]
    path = os.path.join(state, f"{point}.count")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 32)
        count = int(raw or b"0") + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(count).encode())
        os.fsync(fd)
        return count
    finally:
        os.close(fd)  # closing releases the lock


def hit(point: str) -> None:
    """Kill the job here if ``REPO361_CRASH_AT`` names this point and occurrence; else nothing."""
    wanted = parse(os.environ.get(CRASH_AT_ENV))
    if wanted is None or wanted[0] != point:
        return
    if _occurrence(point) != wanted[1]:
        return
    kill()


def kill() -> None:
    """SIGKILL the armed process group, or this process alone."""
    pgid = os.environ.get(PGID_ENV)
    if pgid and pgid.isdigit() and int(pgid) > 1:
        # Executors' Python workers live in the PySpark daemon's own group: kill the driver's.
        os.killpg(int(pgid), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
