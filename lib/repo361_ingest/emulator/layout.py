"""Where every conversation lives: pages -> files -> Avro records, as plain index arithmetic.

Keeping the layout separate from data generation lets the server answer page requests (names and
URLs only) without generating a byte, and lets files be generated lazily and independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

FILE_PREFIX = "conversations_detail_without_attributes_"


@dataclass(frozen=True)
class FileSpec:
    """One export file: its page, position, name and the conversations of each Avro record."""

    page: int
    index: int
    name: str
    records: tuple[tuple[int, int], ...]  # (first global conversation index, count) per record

    @property
    def conversation_count(self) -> int:
        return sum(count for _, count in self.records)


@dataclass(frozen=True)
class PageSpec:
    """One export page: the files it lists."""

    index: int
    files: tuple[FileSpec, ...]


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` items over ``parts`` slots, differing by at most one (earlier slots get more)."""
    if parts <= 0:
        return []
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def plan_page(
    page: int,
    first_conversation: int,
    conversations: int,
    files_per_page: int,
    records_per_file: int,
    empty_files: Collection[tuple[int, int]] = (),
    empty_records: Collection[tuple[int, int, int]] = (),
) -> PageSpec:
    """Lay out one page. Empty files/records get no conversations; their share goes to the others."""
    if files_per_page < 1 or records_per_file < 1:
        raise ValueError("files_per_page and records_per_file must be >= 1")
    filled_files = [f for f in range(files_per_page) if (page, f) not in empty_files]
    if conversations and not filled_files:
        raise ValueError(f"page {page}: every file is empty but it has {conversations} conversations")
    per_file = dict(zip(filled_files, split_evenly(conversations, len(filled_files))))
    files = []
    next_conv = first_conversation
    for f in range(files_per_page):
        name = f"{FILE_PREFIX}{page * files_per_page + f + 1:03d}"
        if f not in per_file:
            files.append(FileSpec(page, f, name, ()))
            continue
        slots = [r for r in range(records_per_file) if (page, f, r) not in empty_records]
        if per_file[f] and not slots:
            raise ValueError(f"page {page} file {f}: every record is empty but conversations remain")
        counts = dict(zip(slots, split_evenly(per_file[f], len(slots))))
        records = []
        for r in range(records_per_file):
            n = counts.get(r, 0)
            records.append((next_conv, n))
            next_conv += n
        files.append(FileSpec(page, f, name, tuple(records)))
    return PageSpec(page, tuple(files))
