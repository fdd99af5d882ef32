"""Progress while running: Spark job descriptions per stage (event log), never with a URL or secret."""

from __future__ import annotations

import json
import time

import pytest

from repo361_ingest.emulator import Emulator
from repo361_ingest.run import run_ingest

from helpers import emu_credentials

pytestmark = pytest.mark.spark


def _job_descriptions(event_log_dir, app_id: str) -> list[str]:
    found = []
    for path in event_log_dir.rglob(f"*{app_id}*"):
        if path.is_dir():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if '"SparkListenerJobStart"' not in line:
                continue
            event = json.loads(line)
            found.append((event.get("Properties") or {}).get("spark.job.description") or "")
    return found


def test_job_descriptions_name_each_stage_and_hold_no_url_or_secret(spark, spark_event_log, make_config):
    with Emulator(conversations=8, pages=2, files_per_page=1, records_per_file=2, seed=19) as emu:
        config = make_config(emu, batch_max_pages=1)
        summary = run_ingest(spark, config, emu_credentials(emu))
        secrets = {emu.client_secret, emu.api_base_url, emu.storage_base_url}
    assert summary.committed_batches and summary.outcome == "success"
    app_id = spark.sparkContext.applicationId  # the test may use it; the job path never does

    wanted = {
        f"repo361 batch {batch} (pages {n}-{n}): {stage}"
        for n, batch in enumerate(summary.committed_batches, start=1)
        for stage in ("download", "read and append", "watermark")
    }  # (the "position" label runs no Spark job on a first run: the tables do not exist yet)
    deadline = time.monotonic() + 60  # the event log is written by an asynchronous listener
    while True:
        descriptions = _job_descriptions(spark_event_log, app_id)
        if wanted <= set(descriptions) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert wanted <= set(descriptions), sorted(set(descriptions))
    ours = [d for d in descriptions if d.startswith("repo361 ")]
    assert not [d for d in ours if "://" in d or "?" in d or any(s in d for s in secrets)]
    # Cleared at the end of the run: later jobs of the session are not labelled as ours.
    assert spark.conf.get("spark.job.description", None) is None
