"""Security (README "Security"): secrets never leak, headers stay with the API, names stay in staging.

Real Spark, real spark-avro and Delta, the emulator over loopback HTTP; nothing is mocked.
Two runs cover the threat model end to end:

* in-process, DEBUG logging, hostile and duplicate file names, storage redirect: files land only
  in the batch folder, ``_source_file`` holds each original name, ``Authorization`` reaches the
  page endpoint only, and pytest's own log handler (not ours) sees no secret;
* ``repo361-ingest run`` as a subprocess with DEBUG logging and every fault that matters (429, 5xx,
  401 token revocation, expired URLs, storage redirect, truncation, a corrupt file): stdout,
  stderr (Spark's JVM included), the JSON summary and every table hold no secret.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pyspark.sql import functions as F

from helpers import emu_credentials
from repo361_ingest.emulator import Emulator
from repo361_ingest.emulator.faults import HOSTILE_NAMES
from repo361_ingest.run import run_ingest

pytestmark = pytest.mark.spark

PAGE_PATH = "/rawdata/export/page"
STAGED_NAME = re.compile(r"^\d{9}-\d{5}\.avro$")


# ---- what must never leak, and everything it must not leak into ---------------------------------


def signatures(emu: Emulator, urls: list[str]) -> set[str]:
    """Every ``sig`` the emulator signed: from the page answers and from every download request."""
    queries = [urlsplit(u).query for u in urls]
    queries += [r.query for r in emu.request_log if r.path.startswith("/files/")]
    return {sig for q in queries for sig in parse_qs(q).get("sig", [])}


def forbidden(emu: Emulator, urls: list[str]) -> dict[str, str]:
    """label -> value of every secret of a run: client secret, each access token, each signature."""
    values = {"client secret": emu.client_secret}
    values.update({f"access token {i}": t for i, t in enumerate(emu.issued_tokens())})
    values.update({f"signature {s}": s for s in signatures(emu, urls)})
    return values


def tables_as_text(spark, root: Path) -> str:
    """Every Delta table under ``root`` read back as JSON rows, plus its raw transaction log."""
    parts = []
    for log_dir in sorted(root.rglob("_delta_log")):
        frame = spark.read.format("delta").load(str(log_dir.parent))
        parts += [r[0] for r in frame.select(F.to_json(F.struct(*frame.columns))).collect()]
        parts += [p.read_text(errors="replace") for p in log_dir.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    assert parts, f"no Delta table under {root}"
    return "\n".join(parts)


def assert_no_leak(texts: dict[str, str], secrets: dict[str, str]) -> None:
    hits = [(where, label) for where, text in texts.items() for label, value in secrets.items() if value in text]
    assert hits == []


def assert_headers_stay_with_the_api(emu: Emulator) -> None:
    """Authorization reached the page endpoint only; downloads (both servers) carried none."""
    records = emu.request_log
    with_auth = {(r.server, r.method, r.path) for r in records if "authorization" in {k.lower() for k in r.headers}}
    assert with_auth == {("api", "POST", PAGE_PATH)}
    downloads = [r for r in records if r.path.startswith("/files/")]
    # The storage redirect was really exercised: the API answered 302, storage served the file.
    assert {(r.server, r.status) for r in downloads} >= {("api", 302), ("storage", 200)}
    tokens = emu.issued_tokens()
    for r in downloads:
        assert not any(t in json.dumps(r.headers) for t in tokens)


# ---- 1. hostile names, headers, in-process logs ---------------------------------------------


def hostile_page_hook(emu: Emulator, served: list[dict]):
    """Page answers whose names are hostile, over-long, or repeated (on two pages and within one).

    The first answer of page 3 carries URLs that have already expired, so the files named twice on
    that page must each get their own fresh URL back when the page is requested again.
    """
    extra = {7: "same-name", 10: "same-name", 11: "same-name", 8: "L" * 300, 9: "C:\\Windows\\system32\\x"}
    answered: set[int] = set()

    def hook(index: int, payload: dict) -> dict:
        for i, f in enumerate(payload["files"]):
            f["name"] = extra.get(index * 4 + i, f["name"])
        if index == 2 and index not in answered:
            emu.faults.expire_urls()
        answered.add(index)
        served.extend(payload["files"])
        return payload

    return hook


def test_hostile_names_stay_in_staging_and_no_secret_reaches_any_log_handler(
    spark, tmp_path, make_config, caplog, caplog_text, capfd
):
    caplog.set_level(logging.INFO, logger="py4j")  # py4j DEBUG echoes every gateway command
    caplog.set_level(logging.DEBUG)  # last: set_level also sets the capturing handler's level
    caplog.set_level(logging.DEBUG, logger="urllib3")
    staging = tmp_path / "deep" / "er" / "staging"
    outside_before = sorted(Path("/tmp").glob("absolute name*"))
    served: list[dict] = []
    with Emulator(conversations=36, pages=3, files_per_page=4, records_per_file=3, seed=81,
                  storage_redirect=True) as emu:
        emu.faults.hostile_names = True
        emu.faults.page_hook = hostile_page_hook(emu, served)
        config = make_config(emu, staging=str(staging), keep_staging="true", batch_max_pages=2)
        summary = run_ingest(spark, config, emu_credentials(emu))
        assert summary.outcome == "success" and summary.url_renewals >= 1

        # Every conversation arrived, each tagged with the exact name its file was served under
        # (the three "same-name" files, one on page 2 and two on page 3, each with its own rows).
        names = {(f.page, f.index): emu.served_name(f) for f in emu.files()}
        names.update({(1, 3): "same-name", (2, 2): "same-name", (2, 3): "same-name", (2, 0): "L" * 300,
                      (2, 1): "C:\\Windows\\system32\\x"})
        assert set(HOSTILE_NAMES) <= set(names.values())
        expected = {
            c["ConversationId"]: (names[(f.page, f.index)], f.page + 1)
            for f in emu.files() for c in emu.factory.conversations(f)
        }
        rows = spark.read.format("delta").load(config.table).select("ConversationId", "_source_file", "_page_seq").collect()
        assert {r[0]: (r[1], r[2]) for r in rows} == expected
        assert len(rows) == 36

        # Staged files are named by position, only inside the batch folders; nothing else was made.
        # (files starting with "." are the run's own bookkeeping, e.g. its owner marker)
        staged = [p for p in staging.rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert sorted(p.name for p in staged) == sorted(
            f"{f.page + 1:09d}-{f.index:05d}.avro" for f in emu.files()
        )
        for p in staged:
            assert STAGED_NAME.match(p.name) and p.parent.parent.parent.parent == staging
        outside = {
            p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*")
            if p.is_file() and staging not in p.parents
        }
        assert outside == {"conversations", "watermark"}
        assert sorted(Path("/tmp").glob("absolute name*")) == outside_before
        assert not (tmp_path / "deep" / "etc").exists() and not (staging.parent / "etc").exists()

        assert_headers_stay_with_the_api(emu)
        urls = [f["url"] for f in served]
        secrets = forbidden(emu, urls)
        assert len(emu.issued_tokens()) == 1 and len(secrets) >= 2 + 12 + 4  # page 3 signed twice
        out, err = capfd.readouterr()
        # urllib3 really logged its request lines at DEBUG through pytest's handler (not ours);
        # downloads log in the executors' processes, see tests/unit/test_security_logs.py.
        logged = caplog_text()
        assert '"POST /rawdata/export/page HTTP/1.1" 200' in logged
        assert_no_leak(
            {"caplog": logged, "stdout": out, "stderr": err,
             "summary": json.dumps(summary.to_dict()), "tables": tables_as_text(spark, tmp_path)},
            secrets,
        )


# ---- 2. the command line with every fault and DEBUG logging -----------------------------------


def test_cli_run_with_every_fault_at_debug_leaks_no_secret(spark, tmp_path):
    served: list[dict] = []
    seen: set[int] = set()
    with Emulator(conversations=32, pages=4, files_per_page=2, records_per_file=4, seed=83,
                  storage_redirect=True) as emu:
        files = emu.files()

        def hook(index: int, payload: dict) -> dict:
            if index not in seen:  # first answer of a page only: a renewal must heal
                seen.add(index)
                if index == 0:
                    emu.faults.expire_urls()  # these URLs answer 403 -> page 1 requested again
                if index == 1:
                    emu.revoke_tokens()  # the next page request answers 401 -> a second token
            served.extend(payload["files"])
            return payload

        emu.faults.page_hook = hook
        emu.faults.rate_limit_pages(1, retry_after_s=1)
        emu.faults.fail_pages(1, status=502)
        emu.faults.fail_downloads(2)
        emu.faults.truncate_file(files[1].name, 1)
        emu.faults.corrupt_file(files[6].name)  # page 4: the run fails there, after 3 batches
        # Spark's event log records what the UI shows: job descriptions, SQL plans, stage details.
        events = tmp_path / "events"
        events.mkdir()
        env = dict(os.environ, REPO361_CLIENT_ID=emu.client_id, REPO361_CLIENT_SECRET=emu.client_secret,
                   PYSPARK_SUBMIT_ARGS=f"--conf spark.eventLog.enabled=true --conf spark.eventLog.compress=false"
                                       f" --conf spark.eventLog.dir={events.as_uri()} pyspark-shell")
        cmd = [
            str(Path(sys.executable).with_name("repo361-ingest")), "run",
            "--api-base-url", emu.api_base_url, "--token-url", emu.token_url,
            "--table", str(tmp_path / "t"), "--watermark-table", str(tmp_path / "w"),
            "--staging", str(tmp_path / "s"),
            "--set", "log_level=DEBUG", "--set", "batch_max_pages=1", "--set", "backoff_factor_s=0.05",
        ]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 1, done.stderr[-3000:]

        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert (summary["outcome"], summary["batches"], summary["end_page_seq"]) == ("failed", 3, 3)
        assert summary["url_renewals"] >= 1
        assert repr(files[6].name) in summary["error"] and "not a valid Avro container" in summary["error"]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("repo361-ingest: run failed:") and repr(files[6].name) in last

        # Every fault really happened (seen by the emulator), so every path was logged at DEBUG.
        statuses = {(r.server, r.path.split("/")[1], r.status) for r in emu.request_log}
        assert {("api", "rawdata", 429), ("api", "rawdata", 502), ("api", "rawdata", 401),
                ("api", "files", 302), ("api", "files", 403), ("storage", "files", 503),
                ("storage", "files", 200)} <= statuses
        assert len(emu.issued_tokens()) == 2
        assert "DEBUG urllib3.connectionpool" in done.stderr
        assert_headers_stay_with_the_api(emu)

        event_log = "\n".join(p.read_text(errors="replace") for p in events.rglob("*") if p.is_file())
        assert '"spark.job.description":"repo361 batch ' in event_log  # the labels are really there

        secrets = forbidden(emu, [f["url"] for f in served])
        assert_no_leak(
            {"stdout": done.stdout, "stderr": done.stderr, "spark event log": event_log,
             "tables": tables_as_text(spark, tmp_path)},
            secrets,
        )
