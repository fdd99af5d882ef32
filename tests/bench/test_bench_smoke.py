"""Smoke test of the benchmark command's comparison on a tiny export (no timing asserted).

Runs floor, floor_transforms, job and baseline once on the same generated files in the shared
session and checks the results' shape and that all four ingested exactly the emulator's
ConversationIds.
"""

from __future__ import annotations

import argparse

import pytest

from repo361_ingest import bench
from repo361_ingest.emulator.encoder import conversation_id

pytestmark = [pytest.mark.spark, pytest.mark.slow]  # 6 min on the shared machine at load ~16


def test_bench_compares_three_methods_on_the_same_conversations(spark, tmp_path):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--size-mb", "0.25", "--file-mb", "0.05", "--files-per-page", "2",
                              "--latency-ms", "5", "--seed", "11"])
    result = bench.compare(args, tmp_path)

    layout = result["layout"]
    expected = {conversation_id(11, i) for i in range(layout["conversations"])}
    assert result["expected_conversations"] == len(expected) == layout["conversations"] == 108
    methods = {"floor", "floor_transforms", "job", "baseline"}
    assert result["same_conversation_ids"] == dict.fromkeys(methods, True)
    assert set(result["methods"]) == methods
    for method in result["methods"].values():
        assert method["rows"] == 108
        assert set(method) >= {"seconds", "rows", "bytes", "rows_per_s", "mb_per_s", "all_seconds"}
    assert result["methods"]["job"]["no_new_data_outcome"] == "no_new_data"
    assert len({r["bytes"] for r in result["methods"].values()}) == 1
    assert set(result["ratios"]) == {"job_over_floor", "job_over_floor_transforms", "baseline_over_job"}
    digest = bench.ids_digest(expected)
    assert {m: r["conversation_ids_sha256"] for m, r in result["methods"].items()} == dict.fromkeys(
        methods, digest)


def test_job_alone_checks_the_ids_by_digest_and_reports_the_driver_memory(spark, tmp_path):
    # The memory runs get only the emulator's digest of the ids (holding them would be measured
    # as the job's memory); the check must still compare the exact set.
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--job-alone", "--pages", "3", "--conversations-per-page", "7",
                              "--latency-ms", "0", "--seed", "5"])
    result = bench.job_alone(args, tmp_path)

    assert result["rows"] == 21 and result["layout"]["pages"] == 3
    assert result["pages"] == 4  # page requests: the three pages, then the one that ends the export
    expected = {conversation_id(5, i) for i in range(21)}
    assert result["conversation_ids_sha256"] == bench.ids_digest(expected)
    assert result["same_conversation_ids"] is True
    assert result["no_new_data_outcome"] == "no_new_data"
    assert result["ms_per_page"] == round(1000 * result["seconds"] / 3, 1)
    assert 0 < result["jvm_heap_after_gc_mb"] < result["jvm_rss_peak_mb"]
    assert result["python_rss_peak_mb"] > 0
