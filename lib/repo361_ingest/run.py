"""Compose one run: position -> pages -> batches -> download -> read -> append -> watermark.

Per batch, in this order (DESIGN §6): download every file, read them, append to the target as one
idempotent commit, append the watermark row, delete the batch's staging folder. A failure at any
step leaves the watermark at the last committed batch; the target commit carries the resume
position, so a crash between the two commits is repaired at the next start.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from repo361_ingest import failpoints, leftovers
from repo361_ingest.api import ExportApi, FileRef, Page
from repo361_ingest.auth import Credentials, TokenProvider
from repo361_ingest.config import IngestConfig
from repo361_ingest.download import STATUS_EXPIRED, STATUS_OK, DownloadSettings
from repo361_ingest.errors import ConcurrentRunError, DownloadError, IngestError
from repo361_ingest.http import HttpSettings, build_session
from repo361_ingest.logs import scrub
from repo361_ingest.pager import (
    Batch, FileSizeEstimate, PageStep, WalkStats, group_batches, pages_to_renew, prefetch, walk_pages,
)
from repo361_ingest.datasets import Routing
from repo361_ingest.read import (
    BatchInfo, ReadOptions, StagedFile, TargetRows, find_bad_instant, read_batch, read_errors,
)
from repo361_ingest.sink import app_id, append, batch_txn, find_commit, is_concurrent_write, table_exists
from repo361_ingest.spark import describe_jobs
from repo361_ingest.staging import Staging
from repo361_ingest.transfer import download_on_executors
from repo361_ingest.transform import TimestampRule, cast_is_exact, check_appendable
from repo361_ingest.watermark import WatermarkRow, append_row, reconcile

log = logging.getLogger(__name__)

# Early downloads: the first wave of a batch's files, and the wait for a page that marks the pager
# as the bottleneck (a page from the look-ahead's queue arrives in microseconds; one the API is
# still answering takes its round trip).
EARLY_WAVE_FILES = 8
PAGER_BEHIND_S = 0.005


@dataclass
class RunSummary:
    """What a run did; printed as JSON last on stdout and returned by ``run_ingest``."""

    run_id: str
    source: str
    outcome: str = "running"  # success | no_new_data | failed
    pages: int = 0
    batches: int = 0
    files: int = 0
    bytes: int = 0
    rows: int = 0
    url_renewals: int = 0
    seconds: float = 0.0
    start_page_seq: int = 0
    end_page_seq: int = 0
    end_reason: str = ""
    committed_batches: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def http_settings(config: IngestConfig) -> HttpSettings:
    return HttpSettings(
        connect_timeout_s=config.connect_timeout_s,
        read_timeout_s=config.read_timeout_s,
        retries=config.http_retries,
        backoff_factor_s=config.backoff_factor_s,
        backoff_max_s=config.backoff_max_s,
        ca_bundle=config.ca_bundle,
    )


class _BatchRunner:
    """Ingests one batch at a time; holds what every batch of a run shares."""

    def __init__(
        self, spark: SparkSession, config: IngestConfig, api: ExportApi, run_id: str, summary: RunSummary
    ) -> None:
        self.spark = spark
        self.config = config
        self.api = api
        self.run_id = run_id
        self.summary = summary
        self.target = config.require("table")
        self.watermark = config.require("watermark_table")
        self.staging = Staging.from_config(config.require("staging"))
        self.txn_app_id = app_id(config.source, self.target)
        self.routing = Routing(self.target, config.conversation_datasets, config.dataset_tables,
                               config.unknown_datasets)
        self.read_options = ReadOptions(TimestampRule.from_config(config.timestamp_fields),
                                        cast_instants=cast_is_exact(spark))
        self.download_settings = DownloadSettings(
            http=http_settings(config), max_bytes=config.max_download_bytes,
            threads_per_task=config.download_threads,
        )
        # Fed after each download; bounds the files (so the staged bytes) of the next batch.
        self.sizes = FileSizeEstimate(config.batch_max_files, config.batch_max_bytes)
        # Early downloads (see on_step): the batch being assembled, its files not yet
        # downloaded, and the manifest rows of those already downloaded.
        self._assembling = 0
        self._queued: list[dict[str, Any]] = []
        self._early: dict[tuple[int, int], dict[str, Any]] = {}
        self._wave_files = EARLY_WAVE_FILES
        self.pager_waited = 0.0  # seconds the last page kept the run waiting (set by pace())

    def batch_id(self, number: int) -> str:
        return f"{self.run_id}-{number:05d}"

    def pace(self, steps: Iterator[PageStep]) -> Iterator[PageStep]:
        """Pass ``steps`` through, noting how long each kept the run waiting for the pager."""
        while True:
            asked = time.monotonic()
            step = next(steps, None)
            if step is None:
                return
            self.pager_waited = time.monotonic() - asked
            yield step

    def on_step(self, step: PageStep, batch: Batch, number: int) -> None:
        """A page joined the batch being assembled: download what is in hand while the pager is behind.

        Paging is serial; a batch of many pages would otherwise wait for its last page before the
        first download starts. When the last page kept the run waiting (the pager is the
        bottleneck, as on a first run or a slow API), the files of the pages in hand are downloaded
        now, in waves that double in size (so a batch costs a few download jobs, not one per
        page). When pages come from the look-ahead at once, nothing is downloaded early: one
        download job per batch is cheaper then. Only the staging folder is touched; commits stay
        in ``ingest``.
        """
        if number != self._assembling:
            self._assembling, self._queued, self._early = number, [], {}
            self._wave_files = EARLY_WAVE_FILES
        batch_dir = self.staging.batch_dir(self.config.source, self.run_id, self.batch_id(number))
        self._queued.extend(download_entries(step, batch_dir))
        if self.pager_waited < PAGER_BEHIND_S or len(self._queued) < self._wave_files:
            return
        describe_jobs(self.spark, f"repo361 batch {self.batch_id(number)} (pages {batch.first_seq}-"
                                  f"{batch.last_seq}): download")
        rows = download_on_executors(self.spark, self._queued, self.download_settings,
                                     self.config.download_parallelism)
        self._early.update({(r["page_seq"], r["file_index"]): r for r in rows})
        self._queued = []
        self._wave_files *= 2

    def ingest(self, batch: Batch, number: int) -> None:
        batch_id = self.batch_id(number)
        batch_dir = self.staging.batch_dir(self.config.source, self.run_id, batch_id)
        label = f"repo361 batch {batch_id} (pages {batch.first_seq}-{batch.last_seq})"
        describe_jobs(self.spark, f"{label}: download")
        early = self._early if number == self._assembling else {}
        manifest = self._download(batch, batch_dir, early)
        failpoints.hit("after_download")
        staged = [
            StagedFile(
                spark_path=self.staging.spark_path(m["path"]),
                staged_name=m["path"].rsplit("/", 1)[-1],
                source_name=m["name"],
                page_seq=m["page_seq"],
                schema_fingerprint=m["schema_fingerprint"],
                records=m["records"],
                writer_schema=m.get("writer_schema"),
            )
            for m in manifest
        ]
        nbytes = sum(m["bytes"] for m in manifest)
        self.sizes.add(len(manifest), nbytes)
        resume = batch.resume
        meta = {
            "source": self.config.source,
            "page_seq": batch.last_seq,
            "token": resume.token,
            "skip_files": list(resume.skip_files),
            "batch_id": batch_id,
            "run_id": self.run_id,
            "files": len(manifest),
            "bytes": nbytes,
        }
        rows = 0
        # A batch without rows still commits (zero rows) once the target exists: the commit's
        # transaction id is what stops another run from appending these pages again.
        describe_jobs(self.spark, f"{label}: read and append")
        info = BatchInfo(self.run_id, batch_id, dt.datetime.now(dt.timezone.utc))
        reads = read_batch(self.spark, staged, info, self.routing, self.read_options)
        for read in reads:  # every schema check before the first write: a conflict commits nothing
            check_appendable(self.spark, read.target, read.frame)
        # Other datasets' tables first, the conversation table (whose commit reconcile reads) last.
        for read in reads[:-1]:
            rows += self._append_other(read, batch, meta, staged)
        if reads[-1].records or table_exists(self.spark, self.target):
            frame = reads[-1].frame
            txn_app_id, txn_version = batch_txn(self.txn_app_id, batch.first_seq - 1)
            try:
                with read_errors(staged, self._diagnosis(staged)):
                    append(
                        frame,
                        self.target,
                        txn_app_id=txn_app_id,
                        txn_version=txn_version,
                        metadata=meta,
                        partition_by=self.config.partition_by,
                    )
            except Exception as exc:
                if not is_concurrent_write(exc):
                    raise
                raise ConcurrentRunError(self._lost_race(batch, "committed these pages at the same moment")) from None
            commit = find_commit(self.spark, self.target, self.config.source, batch_id)
            if commit is None:
                raise ConcurrentRunError(self._lost_race(batch, "already committed a batch starting here"))
            rows += commit.output_rows
            failpoints.hit("after_target_append")
        describe_jobs(self.spark, f"{label}: watermark")
        append_row(
            self.spark,
            self.watermark,
            WatermarkRow(
                source=self.config.source,
                continuation_token=resume.token,
                page_seq=batch.last_seq,
                batch_id=batch_id,
                run_id=self.run_id,
                files=len(manifest),
                rows=rows,
                bytes=nbytes,
                committed_at=dt.datetime.now(dt.timezone.utc),
                skip_files=resume.skip_files,
            ),
        )
        failpoints.hit("after_watermark_append")
        if not self.config.keep_staging:
            Staging.remove(batch_dir)
        s = self.summary
        s.batches += 1
        s.files += len(manifest)
        s.bytes += nbytes
        s.rows += rows
        s.end_page_seq = batch.last_seq
        s.committed_batches.append(batch_id)
        log.info(
            "batch %s committed: pages %d-%d, %d files, %.1f MB, %d rows",
            batch_id, batch.first_seq, batch.last_seq, len(manifest), nbytes / 1e6, rows,
        )

    def _append_other(self, read: TargetRows, batch: Batch, meta: dict[str, Any],
                      staged: list[StagedFile]) -> int:
        """Append another dataset's rows with that table's own txnAppId and the batch's txnVersion.

        A skipped write (same transaction id already there) is a rerun of a batch that crashed
        after this write: the rows are in the table once, so it counts zero rows and goes on.
        """
        txn_app_id, txn_version = batch_txn(app_id(self.config.source, read.target), batch.first_seq - 1)
        with read_errors(staged, self._diagnosis(staged)):
            append(read.frame, read.target, txn_app_id=txn_app_id, txn_version=txn_version,
                   metadata=meta)
        commit = find_commit(self.spark, read.target, self.config.source, meta["batch_id"])
        return commit.output_rows if commit else 0

    def _diagnosis(self, staged: list[StagedFile]) -> Callable[[], str | None]:
        """What names the field when a fast instant cast fails the batch's write."""
        return lambda: find_bad_instant(self.spark, staged, self.routing, self.read_options)

    @staticmethod
    def _lost_race(batch: Batch, what: str) -> str:
        return (
            f"another run is active or finished first: it {what} (pages from"
            f" {batch.first_seq}); nothing of this run's batch of pages {batch.first_seq}-"
            f"{batch.last_seq} was committed; rerun to resume from the committed position"
        )

    def _download(
        self, batch: Batch, batch_dir: str, early: dict[tuple[int, int], dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Download every file of the batch; renew expired URLs by re-requesting their page.

        ``early`` holds the manifest rows of files :meth:`on_step` already downloaded: those that
        succeeded are kept, expired ones are renewed and downloaded again like any other.
        """
        pending = {
            (e["page_seq"], e["file_index"]): e for step in batch.steps for e in download_entries(step, batch_dir)
        }
        done: dict[tuple[int, int], dict[str, Any]] = {}
        early_expired = self._settle(early.values(), pending, done)
        # Pages that waited behind the look-ahead may hold URLs close to expiry: renew them first.
        waiting = [s for s in batch.steps if any((s.seq, i) in pending for i in range(len(s.files)))]
        stale = set(pages_to_renew(waiting, time.time(), self.config.url_renew_fraction)) | early_expired
        if stale:
            log.info("pages %s: download URLs expired or older than %.0f%% of their life, renewing"
                     " before download", sorted(stale), 100 * self.config.url_renew_fraction)
            self.summary.url_renewals += 1
            self._renew(batch, stale, pending)
        renewals = 0
        while pending:
            rows = download_on_executors(
                self.spark, list(pending.values()), self.download_settings,
                self.config.download_parallelism,
            )
            expired_pages = self._settle(rows, pending, done)
            if not pending:
                break
            if renewals >= self.config.max_url_renewals:
                names = sorted(e["name"] for e in pending.values())
                raise DownloadError(
                    f"download URLs of {names[:5]} stayed expired after {renewals} renewal(s)"
                )
            renewals += 1
            self.summary.url_renewals += 1
            self._renew(batch, expired_pages, pending)
        return [done[k] for k in sorted(done)]

    @staticmethod
    def _settle(
        rows: Iterable[dict[str, Any]],
        pending: dict[tuple[int, int], dict[str, Any]],
        done: dict[tuple[int, int], dict[str, Any]],
    ) -> set[int]:
        """Move downloaded files from ``pending`` to ``done``; the pages whose URLs expired.

        A file that failed otherwise fails the batch (nothing of it is committed).
        """
        expired: set[int] = set()
        for row in rows:
            key = (row["page_seq"], row["file_index"])
            if key not in pending:
                continue
            if row["status"] == STATUS_OK:
                done[key] = row
                del pending[key]
            elif row["status"] == STATUS_EXPIRED:
                expired.add(row["page_seq"])
            else:
                raise DownloadError(
                    f"file {row['name']!r} of page {row['page_seq']} failed after"
                    f" {row['attempts']} attempt(s): {row['error']}"
                )
        return expired

    def _renew(self, batch: Batch, pages: set[int], pending: dict[tuple[int, int], dict[str, Any]]) -> None:
        """Fetch fresh URLs for ``pages`` by requesting each again with the token that produced it."""
        steps = {s.seq: s for s in batch.steps}
        for seq in sorted(pages):
            step = steps[seq]
            log.info("page %d: download URLs expired, requesting the page again", seq)
            fresh = self.api.fetch_page(step.page.request_token, seq)
            # The n-th file of a name takes the n-th fresh URL of that name: a page may list one
            # name twice, and two files must never be given the same URL.
            urls: dict[str, list[FileRef]] = {}
            for f in fresh.files:
                urls.setdefault(f.name, []).append(f)
            nth: dict[str, int] = {}
            for index, ref in enumerate(step.files):
                key = (seq, index)
                n = nth[ref.name] = nth.get(ref.name, -1) + 1
                if key not in pending:
                    continue
                if n >= len(urls.get(ref.name, ())):
                    raise DownloadError(
                        f"page {seq} no longer lists file {ref.name!r} when requested again"
                    )
                pending[key]["url"] = urls[ref.name][n].url


def download_entries(step: PageStep, batch_dir: str) -> list[dict[str, Any]]:
    """The download entries of a page's files; each is staged under its position, never its name."""
    return [
        {
            "page_seq": step.seq,
            "file_index": index,
            "name": ref.name,
            "url": ref.url,
            "path": f"{batch_dir}/{Staging.file_name(step.seq, index)}",
        }
        for index, ref in enumerate(step.files)
    ]


def run_ingest(
    spark: SparkSession, config: IngestConfig, credentials: Credentials, run_id: str | None = None
) -> RunSummary:
    """Run the job once: ingest every new page, commit batch by batch, return the summary.

    Raises ``IngestError`` (with ``summary`` attached as ``exc.summary``) when a batch fails; the
    batches committed before it stay committed and the watermark points right after them.
    """
    run_id = run_id or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    summary = RunSummary(run_id=run_id, source=config.source)
    started = time.monotonic()
    http = http_settings(config)
    session = build_session(http)
    stats = WalkStats()
    run_dir = ""
    try:
        target = config.require("table")
        watermark = config.require("watermark_table")
        config.require("staging")
        tokens = TokenProvider(config.token_url, credentials, session, http)
        api = ExportApi(config.api_base_url, tokens, session, http)
        runner = _BatchRunner(spark, config, api, run_id, summary)
        run_dir = runner.staging.run_dir(config.source, run_id)
        if not runner.staging.is_object_store:  # on object storage a lifecycle rule expires leftovers
            leftovers.claim(run_dir)
            leftovers.remove_stale(os.path.dirname(run_dir), keep=os.path.basename(run_dir))
        describe_jobs(spark, f"repo361 run {run_id}: position")
        start = reconcile(spark, watermark, target, config.source)
        summary.start_page_seq = summary.end_page_seq = start.page_seq
        log.info("run %s starts after page %d", run_id, start.page_seq)
        def fetch(token: str | None, seq: int) -> Page:
            page = api.fetch_page(token, seq)
            failpoints.hit("after_page_fetch")
            return page

        steps = runner.pace(prefetch(
            walk_pages(fetch, start, config.max_pages, config.max_empty_pages, stats),
            config.lookahead_pages,
        ))
        for number, batch in enumerate(
            group_batches(steps, config.batch_max_pages, runner.sizes.file_limit, runner.on_step), start=1
        ):
            runner.ingest(batch, number)
        summary.outcome = "success" if summary.batches else "no_new_data"
        return summary
    except IngestError as exc:
        summary.outcome = "failed"
        summary.error = scrub(str(exc))
        exc.summary = summary  # type: ignore[attr-defined]
        raise
    except Exception as exc:
        # Spark/Delta/py4j errors: the summary still says what was committed; the message is
        # cut to its first line (a Java stack trace is not a message) and scrubbed.
        summary.outcome = "failed"
        summary.error = short_error(exc)
        exc.summary = summary  # type: ignore[attr-defined]
        raise
    finally:
        if run_dir and not config.keep_staging:
            # A failed batch leaves nothing behind either: its staged files are only a cache.
            Staging.remove(run_dir)
        summary.pages = stats.pages_requested
        summary.end_reason = summary.end_reason or stats.end_reason
        summary.seconds = round(time.monotonic() - started, 3)
        session.close()
        describe_jobs(spark, None)


def short_error(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line`` of an exception, bounded and scrubbed: safe for a summary and stderr."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > limit:
        first = first[:limit] + "..."
    return scrub(f"{type(exc).__name__}: {first}")
