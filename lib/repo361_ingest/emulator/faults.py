"""Faults the emulator injects on request, so tests can prove the job survives (or fails cleanly).

Every fault is off until a test asks for it and :meth:`Faults.reset` turns them all off again.
Counted faults ("the next N requests") are consumed atomically so concurrent downloads on
executors see exactly N failures, not N per thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

HOSTILE_NAMES = ("../../etc/x", "/tmp/absolute name", "name with spaces ü", "..", "a\\..\\b",
                 "sub/dir/file", "nul\x00byte")


@dataclass
class Faults:
    """Switchboard of injected faults. Attributes may be set directly; methods document intent."""

    latency_ms: float = 0.0  # delay before the first byte of every response
    bandwidth_bytes_per_s: float | None = None  # cap on file bodies (per response)
    hostile_names: bool = False  # page responses list hostile file names (security tests)
    token_max_age_s: float | None = None  # access tokens older than this answer 401
    retry_after_s: int = 1
    page_429: int = 0
    page_5xx: int = 0
    page_5xx_status: int = 503
    download_5xx: int = 0
    download_5xx_status: int = 503
    malformed_json: int = 0
    wrong_format: int = 0
    url_min_generation: int = 0  # URLs signed before this generation answer 403
    failing_pages: set[int] = field(default_factory=set)  # page index -> permanent 500
    truncate: dict[str, int] = field(default_factory=dict)  # file name -> times left to cut off
    corrupt: set[str] = field(default_factory=set)  # file names served as corrupt Avro
    # (page index, page payload) -> payload to send: hostile pages (names, URLs, sizes) for tests
    page_hook: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _generation: int = 0  # current URL-signing generation, bumped by expire_urls()

    # ---- requests to turn faults on ------------------------------------------------------------

    def rate_limit_pages(self, times: int, retry_after_s: int = 1) -> None:
        """The next ``times`` page requests answer 429 with ``Retry-After: retry_after_s``."""
        with self._lock:
            self.page_429, self.retry_after_s = times, retry_after_s

    def fail_pages(self, times: int, status: int = 503) -> None:
        """The next ``times`` page requests answer a transient ``status`` (5xx)."""
        with self._lock:
            self.page_5xx, self.page_5xx_status = times, status

    def fail_downloads(self, times: int, status: int = 503) -> None:
        """The next ``times`` file downloads answer a transient ``status`` (5xx)."""
        with self._lock:
            self.download_5xx, self.download_5xx_status = times, status

    def fail_page_permanently(self, page_index: int) -> None:
        """Page ``page_index`` (0-based) answers 500 until reset: a run must stop, not loop."""
        with self._lock:
            self.failing_pages.add(page_index)

    def expire_tokens_older_than(self, seconds: float) -> None:
        """Access tokens older than ``seconds`` answer 401 (0 = every token issued so far)."""
        with self._lock:
            self.token_max_age_s = seconds

    def expire_urls(self) -> None:
        """Every download URL issued so far answers 403 (expired); re-requesting a page heals."""
        with self._lock:
            self._generation += 1
            self.url_min_generation = self._generation

    def truncate_file(self, name: str, times: int = 1) -> None:
        """The next ``times`` downloads of ``name`` stop half-way, below their Content-Length."""
        with self._lock:
            self.truncate[name] = times

    def corrupt_file(self, name: str) -> None:
        """Downloads of ``name`` serve an Avro file whose sync marker is broken."""
        with self._lock:
            self.corrupt.add(name)

    def malformed_page(self, times: int = 1) -> None:
        """The next ``times`` page requests answer 200 with a body that is not JSON."""
        with self._lock:
            self.malformed_json = times

    def wrong_format_page(self, times: int = 1) -> None:
        """The next ``times`` page requests answer ``"format": "parquet"`` instead of avro."""
        with self._lock:
            self.wrong_format = times

    def reset(self) -> None:
        """Turn every fault off (latency/bandwidth too); URLs issued before stay invalid."""
        with self._lock:
            self.latency_ms, self.bandwidth_bytes_per_s = 0.0, None
            self.hostile_names, self.token_max_age_s = False, None
            self.page_429 = self.page_5xx = self.download_5xx = 0
            self.malformed_json = self.wrong_format = 0
            self.page_hook = None
            self.failing_pages.clear()
            self.truncate.clear()
            self.corrupt.clear()

    # ---- used by the server ----------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    def take(self, counter: str) -> bool:
        """Consume one occurrence of a counted fault; True if it applies to this request."""
        with self._lock:
            left = getattr(self, counter)
            if left > 0:
                setattr(self, counter, left - 1)
                return True
            return False

    def take_truncate(self, name: str) -> bool:
        with self._lock:
            left = self.truncate.get(name, 0)
            if left > 0:
                self.truncate[name] = left - 1
                return True
            return False
