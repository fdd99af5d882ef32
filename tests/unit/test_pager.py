"""The pager's end-of-data rules and batching, against a scripted page sequence (no network)."""

from __future__ import annotations

import time

import pytest

from repo361_ingest.api import FileRef, Page
from repo361_ingest.pager import Position, WalkStats, group_batches, prefetch, walk_pages


def page(request: str | None, returned: str | None, *names: str) -> Page:
    files = tuple(FileRef(n, f"https://storage.example/{n}?sig=s") for n in names)
    return Page(request, returned, files, 1.0, time.time())


class Script:
    """fetch(token, seq) answering from a dict token -> Page, recording what was asked."""

    def __init__(self, pages: dict[str | None, Page]) -> None:
        self.pages = pages
        self.asked: list[tuple[str | None, int]] = []

    def __call__(self, token: str | None, seq: int) -> Page:
        self.asked.append((token, seq))
        return self.pages[token]


def walk(script: Script, start: Position = Position(None, 0), **kw) -> tuple[list, WalkStats]:
    stats = WalkStats()
    return list(walk_pages(script, start, stats=stats, **kw)), stats


def test_follows_tokens_and_stops_on_repeated_token() -> None:
    script = Script({
        None: page(None, "t1", "a"),
        "t1": page("t1", "t2", "b", "c"),
        "t2": page("t2", "t2"),  # same token, no files: end of data
    })
    steps, stats = walk(script)
    assert [(s.seq, [f.name for f in s.files]) for s in steps] == [(1, ["a"]), (2, ["b", "c"])]
    assert steps[-1].resume == Position("t2", 2)
    assert script.asked == [(None, 1), ("t1", 2), ("t2", 3)]
    assert stats.end_reason == "no new data"


def test_empty_page_with_null_token_ends_and_keeps_last_token() -> None:
    script = Script({"t5": page("t5", "t6", "x"), "t6": page("t6", None)})
    steps, _ = walk(script, Position("t5", 4))
    assert [s.seq for s in steps] == [5]
    assert steps[-1].resume == Position("t6", 5)


def test_last_page_with_files_and_null_token_keeps_its_request_token_and_names() -> None:
    script = Script({"t1": page("t1", "t2", "a"), "t2": page("t2", None, "b", "c")})
    steps, stats = walk(script, Position("t1", 0))
    assert steps[-1].resume == Position("t2", 2, ("b", "c"))
    assert steps[-1].resume.token is not None
    assert stats.end_reason == "last page answered no continuation token"


def test_rerun_from_null_token_position_skips_committed_files_only() -> None:
    # The next run asks for page t2 again; meanwhile a page was added after it.
    script = Script({"t2": page("t2", "t3", "b", "c"), "t3": page("t3", None, "d")})
    steps, _ = walk(script, Position("t2", 2, ("b", "c")))
    assert [(s.seq, [f.name for f in s.files]) for s in steps] == [(3, []), (4, ["d"])]
    assert steps[-1].resume == Position("t3", 4, ("d",))


def test_empty_pages_with_new_tokens_followed_up_to_limit() -> None:
    script = Script({
        "t0": page("t0", "e1"), "e1": page("e1", "e2"), "e2": page("e2", "e3"),
        "e3": page("e3", "e4"), "e4": page("e4", "t5", "late"), "t5": page("t5", "t5"),
    })
    steps, stats = walk(script, Position("t0", 0), max_empty_pages=2)
    assert [s.seq for s in steps] == [1, 2]
    assert steps[-1].resume == Position("e2", 2)
    assert stats.end_reason == "2 empty pages in a row"
    steps, _ = walk(Script(script.pages), Position("t0", 0), max_empty_pages=5)
    assert [f.name for s in steps for f in s.files] == ["late"]


def test_max_pages_counts_requests() -> None:
    script = Script({None: page(None, "t1", "a"), "t1": page("t1", "t2", "b"), "t2": page("t2", "t3", "c")})
    steps, stats = walk(script, max_pages=2)
    assert [s.seq for s in steps] == [1, 2]
    assert steps[-1].resume == Position("t2", 2)
    assert stats.end_reason == "max_pages=2 reached"
    assert len(script.asked) == 2


def test_group_batches_by_pages_and_files_never_splits_a_page() -> None:
    script = Script({
        None: page(None, "1", "a", "b"), "1": page("1", "2", "c"), "2": page("2", "3", "d", "e", "f"),
        "3": page("3", "4", "g"), "4": page("4", "4"),
    })
    steps, _ = walk(script)
    batches = list(group_batches(steps, max_pages=10, max_files=3))
    assert [[s.seq for s in b.steps] for b in batches] == [[1, 2], [3], [4]]
    assert [b.resume.token for b in batches] == ["2", "3", "4"]
    batches = list(group_batches(steps, max_pages=1, max_files=100))
    assert [(b.first_seq, b.last_seq) for b in batches] == [(1, 1), (2, 2), (3, 3), (4, 4)]


def test_prefetch_preserves_order_and_reraises_errors_in_place() -> None:
    def gen():
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    seen = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for item in prefetch(gen(), depth=2):
            seen.append(item)
    assert seen == [1, 2]
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))


def test_group_batches_reports_each_page_with_the_number_of_the_batch_it_joins() -> None:
    script = Script({
        None: page(None, "1", "a", "b"), "1": page("1", "2", "c"), "2": page("2", "3", "d", "e", "f"),
        "3": page("3", "4", "g"), "4": page("4", "4"),
    })
    steps, _ = walk(script)
    seen: list[tuple[int, int, list[int]]] = []
    batches = list(group_batches(steps, max_pages=10, max_files=3,
                                 on_step=lambda s, b, n: seen.append((s.seq, n, [x.seq for x in b.steps]))))
    # Page 3 does not fit batch 1 (2 + 3 files > 3): it opens batch 2 and is reported as batch 2's.
    assert seen == [(1, 1, [1]), (2, 1, [1, 2]), (3, 2, [3]), (4, 3, [4])]
    assert [[s.seq for s in b.steps] for b in batches] == [[1, 2], [3], [4]]
