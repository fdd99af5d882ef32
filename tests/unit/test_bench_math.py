"""The benchmark's arithmetic (Spark-free): layouts and per-page growth."""

from __future__ import annotations

from repo361_ingest.bench import export_layout, marginal_ms_per_page


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
