"""Crash points, the URL renewal rule, the per-start transaction ids and stale staging: no Spark."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from repo361_ingest import failpoints, leftovers
from repo361_ingest.api import FileRef, Page
from repo361_ingest.pager import PageStep, Position, pages_to_renew, urls_stale
from repo361_ingest.sink import batch_txn

# ---- failpoints --------------------------------------------------------------------------------


def test_parse_names_point_and_occurrence():
    assert failpoints.parse("after_target_append:3") == ("after_target_append", 3)
    assert failpoints.parse("mid_download") == ("mid_download", 1)
    assert failpoints.parse("") is None and failpoints.parse(None) is None
    with pytest.raises(ValueError, match="unknown crash point"):
        failpoints.parse("after_lunch")
    with pytest.raises(ValueError, match=">= 1"):
        failpoints.parse("mid_download:0")


_CHILD = """
import sys
from repo361_ingest import failpoints
for i in range(1, 6):
    print(f"before {i}", flush=True)
    failpoints.hit(sys.argv[1])
print("survived", flush=True)
"""


def _child(point: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPO361_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", _CHILD, point], env=env, capture_output=True,
                          text=True, timeout=60)


def test_hit_kills_with_sigkill_at_the_nth_occurrence(tmp_path):
    done = _child("after_download", {"REPO361_CRASH_AT": "after_download:3",
                                     "REPO361_CRASH_STATE": str(tmp_path)})
    assert done.returncode == -9
    assert done.stdout.split("\n")[:-1] == ["before 1", "before 2", "before 3"]
    assert (tmp_path / "after_download.count").read_text() == "3"


def test_hit_is_a_no_op_for_other_points_and_without_the_variable(tmp_path):
    other = _child("after_download", {"REPO361_CRASH_AT": "mid_download:1"})
    unset = _child("after_download", {})
    assert (other.returncode, unset.returncode) == (0, 0)
    assert other.stdout.endswith("survived\n") and unset.stdout.endswith("survived\n")


def test_occurrences_are_counted_across_processes(tmp_path):
    env = {"REPO361_CRASH_AT": "mid_download:7", "REPO361_CRASH_STATE": str(tmp_path)}
    first = _child("mid_download", env)  # reaches 5 occurrences and survives
    second = _child("mid_download", env)  # the 2nd occurrence here is the 7th overall
    assert first.returncode == 0 and second.returncode == -9
    assert second.stdout.split("\n")[:-1] == ["before 1", "before 2"]


def test_arm_records_the_group_only_for_a_group_leader(monkeypatch):
    monkeypatch.delenv(failpoints.PGID_ENV, raising=False)
    monkeypatch.setenv(failpoints.CRASH_AT_ENV, "mid_download")
    failpoints.arm()
    # pytest is not started as its own group leader by this test: nothing may be armed then,
    # or a crash would take the developer's shell down with it.
    expected = str(os.getpgrp()) if os.getpgrp() == os.getpid() else None
    assert os.environ.get(failpoints.PGID_ENV) == expected
    monkeypatch.delenv(failpoints.PGID_ENV, raising=False)


# ---- proactive URL renewal ---------------------------------------------------------------------


def _step(seq: int, fetched_at: float, expiry_hours: float = 1.0, files: int = 1) -> PageStep:
    refs = tuple(FileRef(f"f{seq}_{i}", f"http://127.0.0.1/x?sig={i}") for i in range(files))
    page = Page(f"tok{seq - 1}", f"tok{seq}", refs, expiry_hours, fetched_at)
    return PageStep(seq, page, refs, Position(f"tok{seq}", seq))


def test_urls_are_stale_past_the_fraction_of_their_life():
    now = 10_000.0
    assert not urls_stale(_step(1, now - 1799).page, now, 0.5)
    assert urls_stale(_step(1, now - 1801).page, now, 0.5)
    assert urls_stale(_step(1, now - 7201, expiry_hours=4).page, now, 0.5)
    assert not urls_stale(_step(1, now - 7199, expiry_hours=4).page, now, 0.5)
    assert urls_stale(_step(1, now - 0.001).page, now, 0.0)  # fraction 0: always renew


def test_pages_to_renew_lists_old_pages_with_files_only():
    now = 50_000.0
    steps = [
        _step(4, now - 3000),  # 50 min of a 1 h life: renew
        _step(5, now - 60),  # fresh
        _step(6, now - 3000, files=0),  # nothing to download: no request needed
        _step(7, now - 2000),  # 33 min: renew
    ]
    assert pages_to_renew(steps, now, 0.5) == [4, 7]
    assert pages_to_renew(steps, now, 0.9) == []


# ---- one transaction id per start position --------------------------------------------------


def test_batch_txn_depends_on_the_start_only():
    a_first = batch_txn("repo361-ingest-abc", 0)
    b_longer = batch_txn("repo361-ingest-abc", 0)  # same start, different end: same id
    a_second = batch_txn("repo361-ingest-abc", 2)
    assert a_first == b_longer == ("repo361-ingest-abc-from-0", 1)
    assert a_second == ("repo361-ingest-abc-from-2", 1)


# ---- stale staging folders -------------------------------------------------------------------


def _owned(path, pid: int, host: str | None = None) -> None:
    path.mkdir(parents=True)
    (path / leftovers.OWNER_FILE).write_text(json.dumps({"host": host or socket.gethostname(), "pid": pid}))
    (path / "b1").mkdir()
    (path / "b1" / "000000001-00000.avro").write_bytes(b"x")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_removes_dead_runs_only(tmp_path):
    source = tmp_path / "repo361"
    _owned(source / "dead-run", _dead_pid())
    _owned(source / "live-run", os.getpid())
    _owned(source / "other-host-run", _dead_pid(), host="some-other-driver")
    leftovers.claim(str(source / "me"))
    removed = leftovers.remove_stale(str(source), keep="me")
    assert removed == ["dead-run"]
    assert sorted(p.name for p in source.iterdir()) == ["live-run", "me", "other-host-run"]


def test_runs_of_other_hosts_are_stale_after_the_age_limit(tmp_path):
    run = tmp_path / "old"
    _owned(run, 1, host="some-other-driver")
    old = time.time() - leftovers.STALE_AFTER_S - 10
    for p in (run, run / "b1", run / "b1" / "000000001-00000.avro", run / leftovers.OWNER_FILE):
        os.utime(p, (old, old))
    assert leftovers.is_stale(str(run))
    assert not leftovers.is_stale(str(run), now=old + 60)
