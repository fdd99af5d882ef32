"""Crash-safety harness: SIGKILL the job at many points of a run, rerun it, count lost and duplicates.

One emulator runs in this process. For every kill point the harness publishes a few new pages,
starts the real job as a subprocess (``.venv/bin/repo361-ingest run``, its own process group,
credentials in ``REPO361_CLIENT_ID``/``SECRET``) and kills it:

* ``<point>:<n>`` — a named crash point of :mod:`repo361_ingest.failpoints`, the n-th time the run
  reaches it (``REPO361_CRASH_AT``); ``mid_download`` fires inside an executor's download;
* ``request:<n>`` — from outside: the harness SIGKILLs the job's process group as soon as the
  emulator has seen the job's n-th HTTP request (token, page or download), wherever the job is.

After each kill it checks the invariants that must hold even mid-way (no duplicate
ConversationId, the watermark never past the target's newest commit), reruns the job until it
succeeds, and compares the target with the emulator's conversations: lost = expected ids missing,
duplicated = rows minus distinct ids. The tables are read back from the Delta log and the Parquet
files with pyarrow, not with the job's own code.

``python -m repo361_ingest.crashtest --points 30`` (or ``repo361-ingest crash-sweep``) prints the
table the README's "Crash safety" section reports.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repo361_ingest import failpoints

SOURCE = "repo361"
JOB_TIMEOUT_S = 600.0


# ---- reading Delta tables without Spark ------------------------------------------------------------


def delta_commits(table: str) -> list[list[dict[str, Any]]]:
    """The actions of every commit JSON of a Delta table, in version order (one list per commit)."""
    commits = []
    for path in sorted(glob.glob(os.path.join(table, "_delta_log", "*.json"))):
        with open(path, encoding="utf-8") as fo:
            commits.append([json.loads(line) for line in fo if line.strip()])
    return commits


def delta_files(table: str) -> list[str]:
    """The data files of the table's current version (adds minus removes of every commit)."""
    live: dict[str, None] = {}
    for actions in delta_commits(table):
        for action in actions:
            if "add" in action:
                live[action["add"]["path"]] = None
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    return [os.path.join(table, p) for p in live]


def read_column(table: str, column: str) -> list[Any]:
    import pyarrow.parquet as pq  # imported here: the CLI loads this module for its arguments

    values: list[Any] = []
    for path in delta_files(table):
        values.extend(pq.read_table(path, columns=[column]).column(column).to_pylist())
    return values


def newest_target_page(table: str) -> int:
    """page_seq recorded in the target's newest commit of ours (0 when none)."""
    newest = 0
    for actions in delta_commits(table):
        for action in actions:
            meta = action.get("commitInfo", {}).get("userMetadata")
            if meta:
                try:
                    newest = max(newest, int(json.loads(meta)["repo361"]["page_seq"]))
                except (ValueError, KeyError, TypeError):
                    continue
    return newest


def watermark_page(table: str) -> int:
    pages = read_column(table, "page_seq") if os.path.isdir(os.path.join(table, "_delta_log")) else []
    return max(pages, default=0)


@dataclass
class Check:
    rows: int
    lost: int
    duplicated: int
    unexpected: int
    watermark_page: int
    target_page: int

    @property
    def exact(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unexpected == 0


def check_tables(expected: set[str], target: str, watermark: str) -> Check:
    """Compare the target's ConversationIds with ``expected``; read both positions."""
    ids = read_column(target, "ConversationId") if os.path.isdir(os.path.join(target, "_delta_log")) else []
    counts = Counter(ids)
    return Check(
        rows=len(ids),
        lost=len(expected - set(counts)),
        duplicated=sum(n - 1 for n in counts.values()),
        unexpected=len(set(counts) - expected),
        watermark_page=watermark_page(watermark),
        target_page=newest_target_page(target) if os.path.isdir(target) else 0,
    )


# ---- running the job as a subprocess ---------------------------------------------------------------


def job_binary() -> str:
    """``repo361-ingest`` next to this interpreter (the venv's console script)."""
    return str(Path(sys.executable).with_name("repo361-ingest"))


@dataclass
class JobSpec:
    """What the job subprocess gets: emulator URLs, tables, credentials, extra --set items."""

    api_base_url: str
    token_url: str
    client_id: str
    client_secret: str
    work: Path
    settings: tuple[str, ...] = (
        "batch_max_pages=1", "lookahead_pages=2", "backoff_factor_s=0.05", "backoff_max_s=0.5",
        "download_parallelism=2", "log_level=WARNING",
    )

    @property
    def target(self) -> str:
        return str(self.work / "conversations")

    @property
    def watermark(self) -> str:
        return str(self.work / "watermark")

    @property
    def staging(self) -> str:
        return str(self.work / "staging")

    def argv(self) -> list[str]:
        args = [
            job_binary(), "run", "--api-base-url", self.api_base_url, "--token-url", self.token_url,
            "--table", self.target, "--watermark-table", self.watermark, "--staging", self.staging,
        ]
        for item in self.settings:
            args += ["--set", item]
        return args

    def env(self, crash_at: str | None = None, state_dir: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPO361_")}
        env.update(
            REPO361_CLIENT_ID=self.client_id,
            REPO361_CLIENT_SECRET=self.client_secret,
            REPO361_SPARK_MASTER="local[2]",
            REPO361_SHUFFLE_PARTITIONS="2",
        )
        if crash_at:
            env[failpoints.CRASH_AT_ENV] = crash_at
            if state_dir:
                env[failpoints.STATE_ENV] = state_dir
        return env


@dataclass
class JobResult:
    returncode: int
    seconds: float
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    @property
    def last_stderr_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def start_job(spec: JobSpec, crash_at: str | None = None, state_dir: str | None = None) -> subprocess.Popen[str]:
    """Start the job in its own process group (so a kill takes its JVM and workers too)."""
    spec.work.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        spec.argv(), env=spec.env(crash_at, state_dir), cwd=str(spec.work), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group this harness started for ``proc`` (its pid is the group id)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def finish_job(proc: subprocess.Popen[str], started: float, timeout_s: float = JOB_TIMEOUT_S) -> JobResult:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
    kill_group(proc)  # leftovers of the group (a JVM whose driver was killed) go too
    return JobResult(proc.returncode, round(time.monotonic() - started, 1), out, err)


def run_job(spec: JobSpec, crash_at: str | None = None, emulator: Any = None) -> JobResult:
    """Run the job once; ``crash_at`` is a failpoint spec or ``request:<n>`` (killed from here)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="repo361-crash-state-") as state:
        external = crash_at.startswith("request:") if crash_at else False
        proc = start_job(spec, None if external else crash_at, state)
        watcher = None
        if external and emulator is not None:
            assert crash_at is not None
            watcher = threading.Thread(
                target=_kill_at_request, args=(proc, emulator, int(crash_at.split(":", 1)[1])), daemon=True
            )
            watcher.start()
        result = finish_job(proc, started)
        if watcher is not None:
            watcher.join(timeout=5)
        return result


def _kill_at_request(proc: subprocess.Popen[str], emulator: Any, nth: int) -> None:
    seen_before = len(emulator.request_log)
    while proc.poll() is None:
        if len(emulator.request_log) - seen_before >= nth:
            kill_group(proc)
            return
        time.sleep(0.005)


# ---- the sweep -------------------------------------------------------------------------------------


@dataclass
class PointResult:
    kill_at: str
    killed: bool
    reruns: int
    after_kill: Check
    final: Check
    staging_left: int
    crash_run_s: float
    rerun_s: float
    notes: str = ""

    @property
    def ok(self) -> bool:
        mid = self.after_kill
        return (
            self.final.exact
            and mid.duplicated == 0
            and mid.unexpected == 0
            and mid.watermark_page <= mid.target_page
            and self.final.watermark_page == self.final.target_page
            and self.staging_left == 0
        )


def default_points(pages: int) -> list[str]:
    """Every named point at each occurrence a round of ``pages`` pages reaches, plus request kills."""
    points = [f"after_page_fetch:{n}" for n in range(1, pages + 2)]
    for name in ("mid_download", "after_download", "after_target_append", "after_watermark_append"):
        points += [f"{name}:{n}" for n in range(1, pages + 1)]
    # Repair path: die between the two commits, then die again right after the repair.
    points += [f"after_target_append:{n}+after_watermark_repair:1" for n in range(1, pages + 1)]
    # From outside, at the n-th HTTP request (token, pages, downloads interleave).
    points += [f"request:{n}" for n in range(1, 2 * pages + 3)]
    # Two crashes in a row before the rerun that succeeds.
    points += ["mid_download:2+after_target_append:1", "after_watermark_append:1+mid_download:1",
               "request:4+after_target_append:1", "after_download:2+request:5"]
    return points


def staging_leftovers(spec: JobSpec) -> int:
    root = Path(spec.staging) / SOURCE
    return sum(1 for p in root.iterdir() if p.is_dir()) if root.is_dir() else 0


class Rerunner:
    """Reruns the job to success: in this process (one SparkSession) or as a subprocess."""

    def __init__(self, spec: JobSpec, mode: str, spark: Any = None) -> None:
        self.spec = spec
        self.mode = mode
        self._spark: Any = spark

    def run(self) -> tuple[bool, str]:
        if self.mode == "subprocess":
            result = run_job(self.spec)
            return result.returncode == 0, result.last_stderr_line
        from repo361_ingest.auth import Credentials
        from repo361_ingest.config import load_config
        from repo361_ingest.run import run_ingest
        from repo361_ingest.spark import local_builder

        if self._spark is None:
            self._spark = local_builder("repo361-crashtest", master="local[2]").config(
                "spark.ui.enabled", "false").getOrCreate()
        config = load_config(
            None,
            {"api_base_url": self.spec.api_base_url, "token_url": self.spec.token_url,
             "table": self.spec.target, "watermark_table": self.spec.watermark,
             "staging": self.spec.staging},
            list(self.spec.settings), environ={}, cwd=self.spec.work,
        )
        try:
            run_ingest(self._spark, config, Credentials(self.spec.client_id, self.spec.client_secret))
            return True, "success"
        except Exception as exc:  # noqa: BLE001 - recorded in the table
            return False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def kill_and_recover(
    emulator: Any, spec: JobSpec, kill_at: str, rerunner: Rerunner, max_reruns: int = 3
) -> PointResult:
    """One kill point: crash the job (chained specs joined by ``+``), check, rerun, check."""
    killed = True
    crash_s = 0.0
    notes = []
    for part in kill_at.split("+"):
        result = run_job(spec, part, emulator)
        crash_s += result.seconds
        if not result.killed:
            killed = False
            notes.append(f"{part} not reached (exit {result.returncode})")
    expected = emulator.conversation_ids()
    after_kill = check_tables(expected, spec.target, spec.watermark)
    started = time.monotonic()
    reruns, ok, last = 0, False, ""
    while not ok and reruns < max_reruns:
        reruns += 1
        ok, last = rerunner.run()
    if not ok:
        notes.append(f"rerun failed: {last}")
    final = check_tables(expected, spec.target, spec.watermark)
    return PointResult(kill_at, killed, reruns, after_kill, final, staging_leftovers(spec),
                       crash_s, round(time.monotonic() - started, 1), "; ".join(notes))


def sweep(points: list[str], pages_per_round: int, rerun_mode: str, work: Path,
          out: Any = sys.stdout) -> list[PointResult]:
    """Run every kill point against one emulator and one target, publishing new pages each time."""
    from repo361_ingest.emulator import Emulator

    results: list[PointResult] = []
    # One file per page, so the n-th occurrence of a download point is in the n-th batch.
    with Emulator(conversations=pages_per_round * 8, pages=pages_per_round, files_per_page=1,
                  records_per_file=2, seed=361) as emu:
        spec = JobSpec(emu.api_base_url, emu.token_url, emu.client_id, emu.client_secret, work)
        rerunner = Rerunner(spec, rerun_mode)
        print(table_header(), file=out, flush=True)
        for i, point in enumerate(points):
            if i:
                emu.add_pages(pages_per_round, conversations=pages_per_round * 8)
            result = kill_and_recover(emu, spec, point, rerunner)
            results.append(result)
            print(table_row(i + 1, result), file=out, flush=True)
    print(summary_line(results), file=out, flush=True)
    return results


def table_header() -> str:
    return (
        "| # | kill at | killed | mid-way: rows / dup / watermark <= target | reruns | final rows"
        " | lost | duplicated | watermark = target | staging left | crash run s | rerun s | ok |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )


def table_row(n: int, r: PointResult) -> str:
    mid = r.after_kill
    mid_ok = "yes" if mid.watermark_page <= mid.target_page else "NO"
    return (
        f"| {n} | `{r.kill_at}` | {'yes' if r.killed else 'no'} | {mid.rows} / {mid.duplicated} /"
        f" {mid.watermark_page} <= {mid.target_page} {mid_ok} | {r.reruns} | {r.final.rows} |"
        f" {r.final.lost} | {r.final.duplicated} | {r.final.watermark_page} = {r.final.target_page} |"
        f" {r.staging_left} | {r.crash_run_s} | {r.rerun_s} | {'ok' if r.ok else 'FAIL'} |"
        + (f" {r.notes}" if r.notes else "")
    )


def summary_line(results: list[PointResult]) -> str:
    killed = sum(r.killed for r in results)
    return (
        f"{len(results)} kill points, {killed} killed as planned, lost {sum(r.final.lost for r in results)},"
        f" duplicated {sum(r.final.duplicated for r in results)},"
        f" {sum(r.ok for r in results)}/{len(results)} ok"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="repo361-ingest crash-sweep", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", type=int, default=0, help="run the first N kill points (0 = all)")
    parser.add_argument("--only", action="append", default=[], help="a kill point spec (repeatable)")
    parser.add_argument("--pages-per-round", type=int, default=3)
    parser.add_argument("--rerun", choices=("inprocess", "subprocess"), default="inprocess",
                        help="rerun in this process (one SparkSession) or as a job subprocess")
    parser.add_argument("--work", help="folder for the tables (default: a temporary folder, removed)")


def run_from_args(args: argparse.Namespace) -> int:
    points = args.only or default_points(args.pages_per_round)
    if args.points:
        points = points[: args.points]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="repo361-crash-sweep-"))
    try:
        results = sweep(points, args.pages_per_round, args.rerun, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
