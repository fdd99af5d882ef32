"""Batches bounded by bytes: a file-size estimate fed after each download limits the next batch."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from repo361_ingest.api import FileRef, Page
from repo361_ingest.config import build_config
from repo361_ingest.errors import ConfigError
from repo361_ingest.pager import Batch, FileSizeEstimate, PageStep, Position, group_batches

MB = 1_000_000


def steps(*file_counts: int) -> list[PageStep]:
    """Pages 1..n with the given numbers of files (names p<seq>f<i>)."""
    out = []
    for seq, count in enumerate(file_counts, start=1):
        files = tuple(FileRef(f"p{seq}f{i}", f"https://storage.example/p{seq}f{i}?sig=s") for i in range(count))
        page = Page(f"t{seq - 1}", f"t{seq}", files, 1.0, time.time())
        out.append(PageStep(seq, page, files, Position(f"t{seq}", seq)))
    return out


def run(batches: Iterator[Batch], estimate: FileSizeEstimate, file_bytes: dict[int, int]) -> list[list[int]]:
    """Consume batches like the run does: feed each batch's (files, bytes) before asking for the next.

    ``file_bytes`` maps a page seq to the size of each of its files.
    """
    seen = []
    for batch in batches:
        seen.append([s.seq for s in batch.steps])
        estimate.add(batch.file_count, sum(file_bytes[s.seq] * len(s.files) for s in batch.steps))
    return seen


def test_estimate_before_any_download_answers_max_files() -> None:
    assert FileSizeEstimate(max_files=200, max_bytes=2 * 1024**3).file_limit() == 200


@pytest.mark.parametrize(
    ("files", "nbytes", "limit"),
    [
        (4, 40 * MB, 10),  # 100 MB // 10 MB
        (3, 31 * MB, 9),  # 100 MB // 10.33 MB rounds down
        (1, 1 * MB, 20),  # 100 files would fit: max_files caps it
        (2, 500 * MB, 1),  # one file is bigger than the bound: never below one
        (2, 0, 20),  # zero-byte files say nothing about size
    ],
)
def test_estimate_limit(files: int, nbytes: int, limit: int) -> None:
    estimate = FileSizeEstimate(max_files=20, max_bytes=100 * MB)
    estimate.add(files, nbytes)
    assert estimate.file_limit() == limit


def test_estimate_uses_the_mean_over_every_batch_so_far() -> None:
    estimate = FileSizeEstimate(max_files=50, max_bytes=100 * MB)
    estimate.add(2, 10 * MB)  # 5 MB a file -> 20
    assert estimate.file_limit() == 20
    estimate.add(2, 30 * MB)  # 40 MB / 4 files = 10 MB a file -> 10
    assert estimate.file_limit() == 10
    estimate.add(0, 0)  # a batch of empty pages changes nothing
    assert estimate.file_limit() == 10


def test_estimate_rejects_limits_below_one() -> None:
    with pytest.raises(ValueError):
        FileSizeEstimate(max_files=0, max_bytes=1)
    with pytest.raises(ValueError):
        FileSizeEstimate(max_files=1, max_bytes=0)


def test_first_batch_takes_max_files_then_the_byte_bound_narrows_the_next() -> None:
    # 8 pages of 2 files of 10 MB; 200 files / 50 pages would take them all in one batch.
    # The first batch knows no size yet and is bounded by max_files=6: pages 1-3. Then
    # 35 MB // 10 MB = 3 files -> one page (a second page would make 4 files) per batch.
    estimate = FileSizeEstimate(max_files=6, max_bytes=35 * MB)
    batches = group_batches(steps(*[2] * 8), 50, estimate.file_limit)
    assert run(batches, estimate, {s: 10 * MB for s in range(1, 9)}) == [[1, 2, 3], [4], [5], [6], [7], [8]]


def test_limit_follows_the_estimate_as_it_changes_between_batches() -> None:
    # Pages 1-3 hold small files (1 MB), pages 4-9 big ones (20 MB); one file per page.
    sizes = {1: MB, 2: MB, 3: MB, 4: 20 * MB, 5: 20 * MB, 6: 20 * MB, 7: 20 * MB, 8: 20 * MB, 9: 20 * MB}
    estimate = FileSizeEstimate(max_files=3, max_bytes=40 * MB)
    batches = group_batches(steps(*[1] * 9), 50, estimate.file_limit)
    # batch 1: max_files=3 -> pages 1-3 (3 MB / 3 files = 1 MB a file -> limit min(3, 40) = 3)
    # batch 2: limit 3 -> pages 4-6 (63 MB / 6 files = 10.5 MB -> limit 3)
    # batch 3: limit 3 -> pages 7-9
    assert run(batches, estimate, sizes) == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]

    estimate = FileSizeEstimate(max_files=3, max_bytes=25 * MB)
    batches = group_batches(steps(*[1] * 9), 50, estimate.file_limit)
    # batch 1: pages 1-3 (1 MB a file -> 25, capped at 3)
    # batch 2: limit 3 -> pages 4-6; 63 MB / 6 = 10.5 MB -> 25 // 10.5 = 2
    # batch 3: limit 2 -> pages 7-8; 103 MB / 8 = 12.875 MB -> 1
    # batch 4: limit 1 -> page 9
    assert run(batches, estimate, sizes) == [[1, 2, 3], [4, 5, 6], [7, 8], [9]]


def test_limit_is_asked_once_per_batch_when_it_starts() -> None:
    answers = iter([4, 1, 2, 3])
    asked: list[int] = []

    def limit() -> int:
        asked.append(1)
        return next(answers)

    batches = group_batches(steps(2, 2, 1, 1, 1, 1, 2), 50, limit)
    # limit 4: pages 1-2 (4 files); 1: page 3; 2: pages 4-5; 3: pages 6-7 (3 files)
    assert [[s.seq for s in b.steps] for b in batches] == [[1, 2], [3], [4, 5], [6, 7]]
    assert len(asked) == 4


def test_a_page_bigger_than_the_byte_bound_is_a_batch_of_its_own() -> None:
    # 5 MB files, bound 12 MB -> 2 files a batch; page 3 holds 4 files and is never split.
    estimate = FileSizeEstimate(max_files=2, max_bytes=12 * MB)
    batches = group_batches(steps(1, 1, 4, 1, 1, 1), 50, estimate.file_limit)
    assert run(batches, estimate, {s: 5 * MB for s in range(1, 7)}) == [[1, 2], [3], [4, 5], [6]]


def test_limit_never_below_one_file_and_empty_pages_ride_along() -> None:
    # Every file is bigger than the bound: one file a batch; pages without files join the batch
    # before them (they add no file), and page count still closes a batch at once.
    estimate = FileSizeEstimate(max_files=10, max_bytes=MB)
    batches = group_batches(steps(1, 1, 0, 1, 0, 0, 1, 1), 3, estimate.file_limit)
    assert run(batches, estimate, {s: 3 * MB for s in range(1, 9)}) == [
        [1, 2, 3], [4, 5, 6], [7], [8],
    ]
    # A limit function answering 0 is treated as 1 file.
    batches = group_batches(steps(1, 1, 1), 50, lambda: 0)
    assert [[s.seq for s in b.steps] for b in batches] == [[1], [2], [3]]


def test_page_count_still_closes_a_batch_and_plain_ints_still_work() -> None:
    batches = list(group_batches(steps(1, 1, 1, 1, 1), max_pages=2, max_files=100))
    assert [[s.seq for s in b.steps] for b in batches] == [[1, 2], [3, 4], [5]]


def test_batch_max_bytes_config_key() -> None:
    assert build_config([]).batch_max_bytes == 2 * 1024**3
    assert build_config([("command line --set", {"batch_max_bytes": 1000})]).batch_max_bytes == 1000
    with pytest.raises(ConfigError, match="batch_max_bytes"):
        build_config([("command line --set", {"batch_max_bytes": 0})])
