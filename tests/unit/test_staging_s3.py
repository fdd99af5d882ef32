"""Executor-side staging on object storage: downloads land in S3 (a moto server on loopback).

No Spark here: this is the part the executors run (pyarrow's S3 filesystem). Spark reading the
same keys through s3a is the opt-in integration test (``-m s3``), because it needs hadoop-aws and
the 558 MB AWS SDK bundle jar.
"""

from __future__ import annotations

import hashlib

import pytest
import requests
from pyarrow import fs as pafs

from repo361_ingest.download import DownloadSettings, download_one, _session
from repo361_ingest.emulator import Emulator
from repo361_ingest.http import HttpSettings
from repo361_ingest.staging import Staging

pytest.importorskip("moto.server", reason="pip install -e '.[dev]' (moto)")


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    for name, value in {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    s3 = pafs.S3FileSystem(endpoint_override=s3_endpoint.split("//")[1], scheme="http", region="us-east-1",
                           allow_bucket_creation=True)
    s3.create_dir("staging-bucket")
    return s3


def test_download_writes_the_file_to_s3_and_cleanup_removes_it(s3_env):
    staging = Staging.from_config("s3a://staging-bucket/repo361/")
    assert staging.root == "s3a://staging-bucket/repo361" and staging.is_object_store
    settings = DownloadSettings(http=HttpSettings(connect_timeout_s=5, read_timeout_s=30, retries=1),
                                max_bytes=10**8)
    with Emulator(conversations=4, pages=1, files_per_page=1, records_per_file=2, seed=5) as emu:
        token = requests.post(emu.token_url, data={"client_id": emu.client_id, "client_secret": emu.client_secret,
                                                   "grant_type": "client_credentials"}, timeout=10).json()["access_token"]
        page = requests.post(f"{emu.api_base_url}/rawdata/export/page", json={"continuationToken": None, "format": "avro"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        (served,) = page["files"]
        batch_dir = staging.batch_dir("repo361", "run-1", "batch-1")
        dest = f"{batch_dir}/{Staging.file_name(1, 0)}"
        entry = {"page_seq": 1, "file_index": 0, "name": served["name"], "url": served["url"], "path": dest}
        row = download_one(entry, settings, _session(settings))
        expected = emu.file_path(served["name"]).read_bytes()

    assert row["status"] == "ok", row["error"]
    assert staging.spark_path(dest) == "s3a://staging-bucket/repo361/repo361/run-1/batch-1/000000001-00000.avro"
    stored = s3_env.open_input_stream("staging-bucket/repo361/repo361/run-1/batch-1/000000001-00000.avro").read()
    assert hashlib.sha256(stored).hexdigest() == row["sha256"]
    assert stored == expected
    assert row["records"] == 2
    # No .part object is left behind, and removing the run folder removes the file.
    names = [i.path for i in s3_env.get_file_info(pafs.FileSelector("staging-bucket", recursive=True)) if i.is_file]
    assert names == ["staging-bucket/repo361/repo361/run-1/batch-1/000000001-00000.avro"]
    Staging.remove(staging.run_dir("repo361", "run-1"))
    remaining = [i.path for i in s3_env.get_file_info(pafs.FileSelector("staging-bucket", recursive=True)) if i.is_file]
    assert remaining == []
