"""Staging folders left behind by runs that crashed: mark ours, remove theirs when provably dead.

A killed run never reaches its cleanup, so its ``<staging>/<source>/<run_id>/`` folder stays. The
next run removes it, but must never remove the folder of a run that is still going (two
schedulers firing at once). Each run writes an owner file (host, pid) into its folder; another
run's folder is stale when its owner ran on this host and that process is gone, or when nothing
in it changed for ``STALE_AFTER_S`` (a driver on another host that died long ago). Staged files
are only a cache of downloads (the data is committed or will be fetched again), so removing a
stale folder never loses data.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time

log = logging.getLogger(__name__)

OWNER_FILE = ".owner.json"
STALE_AFTER_S = 48 * 3600.0


def claim(run_dir: str) -> None:
    """Create ``run_dir`` and record this process as its owner."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, OWNER_FILE), "w", encoding="utf-8") as out:
        json.dump({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}, out)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _newest_mtime(path: str) -> float:
    newest = os.path.getmtime(path)
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                newest = max(newest, os.path.getmtime(os.path.join(folder, name)))
            except OSError:
                continue
    return newest


def is_stale(run_dir: str, now: float | None = None) -> bool:
    """True when no live run owns ``run_dir`` (see the module doc for the rule)."""
    now = time.time() if now is None else now
    try:
        with open(os.path.join(run_dir, OWNER_FILE), encoding="utf-8") as fo:
            owner = json.load(fo)
        if owner.get("host") == socket.gethostname() and not _alive(int(owner["pid"])):
            return True
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no owner file yet (a run that died right at its start) or an unreadable one
    try:
        return now - _newest_mtime(run_dir) > STALE_AFTER_S
    except OSError:
        return False


def remove_stale(source_dir: str, keep: str) -> list[str]:
    """Remove the stale run folders under ``source_dir`` except ``keep``; returns their names."""
    try:
        names = sorted(os.listdir(source_dir))
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(source_dir, name)
        if name == keep or not os.path.isdir(path) or not is_stale(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(name)
    if removed:
        log.info("removed %d staging folder(s) of crashed runs: %s", len(removed), ", ".join(removed[:5]))
    return removed
