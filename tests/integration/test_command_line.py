"""The command-line contract: flags, exit codes, the JSON summary last on stdout, stderr's last line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repo361_ingest import cli
from repo361_ingest.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]


def test_run_prints_summary_last_and_exits_zero(spark, tmp_path, capsys, monkeypatch):
    with Emulator(conversations=16, pages=2, files_per_page=1, records_per_file=2, seed=41) as emu:
        monkeypatch.setenv("REPO361_CLIENT_ID", emu.client_id)
        monkeypatch.setenv("REPO361_CLIENT_SECRET", emu.client_secret)
        monkeypatch.chdir(tmp_path)  # no conf/ here: only flags count
        args = [
            "run", "--api-base-url", emu.api_base_url, "--token-url", emu.token_url,
            "--table", str(tmp_path / "t"), "--watermark-table", str(tmp_path / "w"),
            "--staging", str(tmp_path / "s"), "--format", "avro", "--max-pages", "1",
            "--set", "batch_max_pages=1",
        ]
        assert cli.main(args) == cli.EXIT_OK
        out, err = capsys.readouterr()
        summary = json.loads(out.strip().splitlines()[-1])
        assert (summary["outcome"], summary["pages"], summary["rows"], summary["end_page_seq"]) == ("success", 1, 8, 1)
        assert err.strip().splitlines()[-1].startswith("repo361-ingest: success: 1 page(s), 1 file(s), 8 row(s)")
        assert emu.client_secret not in out + err

        # Same tables, wrong credentials: exit 1, the summary, and a last line naming the failure.
        monkeypatch.setenv("REPO361_CLIENT_SECRET", "wrong-secret")
        assert cli.main(args) == cli.EXIT_FAILED
        out, err = capsys.readouterr()
        last = err.strip().splitlines()[-1]
        assert "refused the client credentials" in last and "nothing" not in last.split("(")[0]
        assert json.loads(out.strip().splitlines()[-1])["outcome"] == "failed"
        assert "wrong-secret" not in out + err


def test_bad_flag_values_exit_2_naming_the_key(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--format", "csv", "--table", "t", "--watermark-table", "w", "--staging", "s"]) == cli.EXIT_USAGE
    assert "config key 'format' (from command line) is invalid" in capsys.readouterr().err
    assert cli.main(["run", "--set", "batch_max_page=3"]) == cli.EXIT_USAGE
    assert "did you mean 'batch_max_pages'" in capsys.readouterr().err
    assert cli.main(["run", "--table", "t", "--staging", "s"]) == cli.EXIT_USAGE
    assert "'watermark_table' is required: pass --watermark-table" in capsys.readouterr().err


def test_spark_submit_job_entry_point(spark, tmp_path):
    """spark-submit jobs/ingest_conversations.py with conf/spark-defaults.conf, local master."""
    spark_submit = Path(sys.executable).with_name("spark-submit")
    with Emulator(conversations=10, pages=2, files_per_page=1, records_per_file=1, seed=43) as emu:
        env = dict(os.environ, REPO361_CLIENT_ID=emu.client_id, REPO361_CLIENT_SECRET=emu.client_secret,
                   PYSPARK_PYTHON=sys.executable)
        proc = subprocess.run(
            [str(spark_submit), "--master", "local[2]", "--properties-file", "conf/spark-defaults.conf",
             "--conf", "spark.ui.enabled=false",
             "jobs/ingest_conversations.py", "--api-base-url", emu.api_base_url, "--token-url", emu.token_url,
             "--table", str(tmp_path / "t"), "--watermark-table", str(tmp_path / "w"),
             "--staging", str(tmp_path / "s")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert (summary["outcome"], summary["rows"], summary["files"]) == ("success", 10, 2)
        rows = spark.read.format("delta").load(str(tmp_path / "t")).select("ConversationId").collect()
        assert sorted(r[0] for r in rows) == sorted(emu.conversation_ids())
