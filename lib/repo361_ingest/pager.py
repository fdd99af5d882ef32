"""Walk export pages from a stored position, apply the end-of-data rules, group pages into batches.

No network code lives here: the walker takes a ``fetch(token, seq) -> Page`` function, so the rules
are tested without a server, and the look-ahead thread is a thin wrapper around the same generator.

End-of-data rules (DESIGN §5):

* a page with files is yielded; the next request uses its returned token;
* a page with files whose returned token is null/empty is yielded and ends the walk: the position
  to store stays at the token that produced it, with the names of its files recorded so that the
  next run, which asks for that same page again, skips them instead of ingesting them twice;
* a page without files whose token is null, empty or equal to the request token ends the walk;
* a page without files but with a new token is followed, up to ``max_empty_pages`` in a row.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from repo361_ingest.api import FileRef, Page

log = logging.getLogger(__name__)

FetchPage = Callable[[str | None, int], Page]


@dataclass(frozen=True)
class Position:
    """Where the next run resumes: the token to send, and files of that token's page already taken."""

    token: str | None
    page_seq: int  # the last committed page's sequence number (0 = nothing committed yet)
    skip_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class PageStep:
    """One fetched page to ingest, with the position to store once it is committed."""

    seq: int
    page: Page
    files: tuple[FileRef, ...]  # the page's files minus those already committed
    resume: Position


@dataclass
class WalkStats:
    pages_requested: int = 0
    empty_pages: int = 0
    end_reason: str = ""


def walk_pages(
    fetch: FetchPage,
    start: Position,
    max_pages: int | None = None,
    max_empty_pages: int = 3,
    stats: WalkStats | None = None,
) -> Iterator[PageStep]:
    """Yield the pages to ingest from ``start``, in order, applying the end-of-data rules."""
    stats = stats if stats is not None else WalkStats()
    token = start.token
    seq = start.page_seq
    skip = set(start.skip_files)
    empty_in_row = 0
    while True:
        if max_pages is not None and stats.pages_requested >= max_pages:
            stats.end_reason = f"max_pages={max_pages} reached"
            return
        seq += 1
        page = fetch(token, seq)
        stats.pages_requested += 1
        returned = page.next_token
        if page.files:
            empty_in_row = 0
            files = tuple(f for f in page.files if f.name not in skip)
            skip = set()  # only the page of the stored token can repeat committed files
            if returned is None:
                resume = Position(token, seq, tuple(f.name for f in page.files))
                yield PageStep(seq, page, files, resume)
                stats.end_reason = "last page answered no continuation token"
                return
            yield PageStep(seq, page, files, Position(returned, seq))
            token = returned
            continue
        stats.empty_pages += 1
        if returned is None or returned == token:
            stats.end_reason = "no new data"
            return
        empty_in_row += 1
        if empty_in_row > max_empty_pages:
            stats.end_reason = f"{max_empty_pages} empty pages in a row"
            return
        yield PageStep(seq, page, (), Position(returned, seq))
        token = returned


@dataclass
class Batch:
    """Consecutive pages committed together (one Delta commit, one watermark row)."""

    steps: list[PageStep] = field(default_factory=list)

    @property
    def files(self) -> list[tuple[int, FileRef]]:
        return [(s.seq, f) for s in self.steps for f in s.files]

    @property
    def file_count(self) -> int:
        return sum(len(s.files) for s in self.steps)

    @property
    def first_seq(self) -> int:
        return self.steps[0].seq

    @property
    def last_seq(self) -> int:
        return self.steps[-1].seq

    @property
    def resume(self) -> Position:
        return self.steps[-1].resume


class FileSizeEstimate:
    """How many files the next batch may take so that its downloads stay within ``max_bytes``.

    Every file of a batch is staged before the batch is read, so the staging disk a batch needs is
    the sum of its files' sizes. The API's pages carry no sizes, so the bound works on the mean size
    of the files downloaded so far in this run: fed after each batch's download with :meth:`add`,
    asked at the start of each batch with :meth:`file_limit`. Before any download it answers
    ``max_files``; it never answers less than one file (a page is never split anyway).
    """

    def __init__(self, max_files: int, max_bytes: int) -> None:
        if max_files < 1 or max_bytes < 1:
            raise ValueError("max_files and max_bytes must be >= 1")
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.files = 0
        self.bytes = 0

    def add(self, files: int, nbytes: int) -> None:
        """Record a downloaded batch: ``files`` files of ``nbytes`` bytes in all."""
        self.files += files
        self.bytes += nbytes

    def file_limit(self) -> int:
        """max(1, min(max_files, max_bytes // mean file size)); ``max_files`` while nothing is known."""
        if self.files == 0 or self.bytes == 0:
            return self.max_files
        # max_bytes // (bytes / files), in integers: no float rounding at the boundary.
        return max(1, min(self.max_files, self.max_bytes * self.files // self.bytes))


def group_batches(
    steps: Iterable[PageStep],
    max_pages: int,
    max_files: int | Callable[[], int],
    on_step: Callable[[PageStep, Batch, int], None] | None = None,
) -> Iterator[Batch]:
    """Group pages into batches of at most ``max_pages`` pages and (about) ``max_files`` files.

    ``max_files`` is a number, or a function asked once when each batch starts (e.g.
    :meth:`FileSizeEstimate.file_limit`): the generator runs lazily, so a batch starts only after
    the one before it was handed on and, in a run, downloaded, and the limit reflects its sizes.
    A page is never split: a single page with more files than the limit is a batch of its own.
    A batch full by page count is handed on at once, not when the next page arrives: if fetching
    that next page fails, the full batch is still committed before the run stops.
    ``on_step(step, batch, number)`` is called as each page joins the batch being assembled
    (``number`` counts batches from 1, as the batches are yielded): the run uses it to start
    downloading a batch's first pages while the pager still fetches its later ones.
    """
    file_limit = max_files if callable(max_files) else (lambda: max_files)
    batch = Batch()
    number = 1
    limit = 0
    for step in steps:
        if batch.steps and batch.file_count + len(step.files) > limit:
            yield batch
            batch = Batch()
            number += 1
        if not batch.steps:
            limit = max(1, file_limit())
        batch.steps.append(step)
        if on_step is not None:
            on_step(step, batch, number)
        if len(batch.steps) >= max_pages:
            yield batch
            batch = Batch()
            number += 1
    if batch.steps:
        yield batch


def urls_stale(page: Page, now: float, fraction: float) -> bool:
    """True when ``page``'s download URLs have used up more than ``fraction`` of their life.

    URLs live ``expiryHours`` from the moment the page answered. A batch waits behind the
    look-ahead and behind earlier batches (slow downloads, a long Delta commit), so its pages can
    be old by the time it downloads: renewing them first, while the rest of the life still covers
    a whole batch's download, keeps the pager's look-ahead from ever outrunning the URLs.
    """
    return bool(page.files) and now - page.fetched_at > fraction * page.expiry_hours * 3600.0


def pages_to_renew(steps: Iterable[PageStep], now: float, fraction: float) -> list[int]:
    """The sequence numbers of the pages (with files left to download) to request again."""
    return [s.seq for s in steps if s.files and urls_stale(s.page, now, fraction)]


_DONE = object()


def prefetch(steps: Iterator[PageStep], depth: int) -> Iterator[PageStep]:
    """Run ``steps`` in a background thread, at most ``depth`` pages ahead of the consumer.

    Paging is serial (each request needs the previous token), so fetching ahead overlaps the
    page round-trips with the downloads of the current batch. An error in the pager is re-raised
    in the consumer at the point the failed page would have come.
    """
    if depth <= 0:
        yield from steps
        return
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for step in steps:
                while not stop.is_set():
                    try:
                        buffer.put(step, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            buffer.put(exc)

    worker = threading.Thread(target=produce, name="repo361-pager", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
