"""The benchmark command without Spark: its arithmetic, and bad arguments failing before any work."""

from __future__ import annotations

import argparse

import pytest

from repo361_ingest import bench
from repo361_ingest.bench import export_layout, marginal_ms_per_page
from repo361_ingest.errors import ConfigError


def test_marginal_cost_per_page_leaves_out_the_fixed_cost_of_a_run():
    growth = {"100": {"seconds": 18.5}, "10": {"seconds": 13.0}, "1000": {"seconds": 62.0}}
    # 5.5 s for 90 more pages, 43.5 s for 900 more; order of the keys does not matter
    assert marginal_ms_per_page(growth) == {"10-100": 61.1, "100-1000": 48.3}


def test_one_point_has_no_marginal_cost():
    assert marginal_ms_per_page({"10": {"seconds": 1.0}}) == {}


def test_export_layout_splits_an_export_into_files_and_pages():
    layout = export_layout(size_mb=512, file_mb=8, files_per_page=4)
    # 512e6 / 2310 = 221,645 conversations; 8e6 / 2310 = 3,463 per file -> 65 files -> 17 pages;
    # 35 records of 100 conversations hold a file
    assert layout == {"conversations": 221645, "pages": 17, "files_per_page": 4, "records_per_file": 35}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="repo361-ingest bench")
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_lists_of_sizes_and_counts_are_parsed_up_front():
    args = parse("--memory-sizes", "512,2048", "--pages-growth", "10,100,1000")
    assert args.memory_sizes == [512.0, 2048.0] and args.pages_growth == [10, 100, 1000]


@pytest.mark.parametrize("argv, message", [
    (["--memory-sizes", "abc"], "argument --memory-sizes: expected comma-separated sizes in MB, got 'abc'"),
    (["--pages-growth", "10x"], "argument --pages-growth: expected comma-separated page counts, got '10x'"),
    (["--pages-growth", "0,10"], "argument --pages-growth: expected comma-separated page counts above 0"),
    (["--repeat", "0"], "argument --repeat: expected a whole number above 0, got '0'"),
    (["--size-mb", "-1"], "argument --size-mb: expected a number above 0, got '-1'"),
    (["--set", "=1"], "argument --set: expected key=value, got '=1'"),
    (["--set", "batch_max_pages"], "argument --set: expected key=value, got 'batch_max_pages'"),
])
def test_bad_arguments_name_the_flag_and_the_value(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_an_unknown_job_key_fails_before_any_work_even_when_the_job_is_skipped():
    with pytest.raises(ConfigError, match=r"unknown config key 'batch_max_page' in --set "
                                          r"\(did you mean 'batch_max_pages'\?\)"):
        bench.main(parse("--skip", "job", "--set", "batch_max_page=1"))


def test_a_failed_sub_run_reports_the_child_s_own_error():
    # A child process that fails (here on a bad key, before it starts Spark) must not surface as
    # a bare exit status: its last lines name the cause.
    args = parse("--set", "max_pagez=3")
    with pytest.raises(bench.BenchError, match=r"(?s)--size-mb 1 run failed \(exit 1\).*unknown config key 'max_pagez'"):
        bench._sub(args, ["--size-mb", "1"])
