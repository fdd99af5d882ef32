"""Route export files to target tables by dataset (Spark-free).

An export page may list files of several datasets: the dataset is the file name without its
numeric suffix (``users_001`` -> ``users``; a trailing ``.avro`` is ignored). Routing, first rule
that applies:

1. ``conversation_datasets`` (glob patterns, default ``conversations*``) -> the conversation table;
2. ``dataset_tables`` (glob pattern -> table path or name, first match wins) -> that table;
3. ``unknown_datasets`` decides the rest: ``auto`` (default) sends a file whose Avro records carry
   ``Entities[].ConversationId`` to the conversation table and any other file to its own table
   ``<table>_<dataset>``; ``table_per_dataset`` always uses ``<table>_<dataset>``; ``fail`` fails
   the batch naming the datasets and files.

A file is never dropped silently.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from repo361_ingest.errors import IngestError

_SUFFIX = re.compile(r"(?:[_\-.]?\d+)?(?:\.avro)?$", re.IGNORECASE)
_TABLE_PART = re.compile(r"[^a-z0-9_]+")

F = TypeVar("F")


def dataset_of(name: str) -> str:
    """``conversations_detail_without_attributes_001`` -> ``conversations_detail_without_attributes``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stripped = _SUFFIX.sub("", base)
    return stripped or base


def table_part(dataset: str) -> str:
    """A dataset name as a safe table-name suffix: lower case, ``[a-z0-9_]`` only."""
    cleaned = _TABLE_PART.sub("_", dataset.lower()).strip("_")
    return cleaned or "dataset"


def sibling_table(table: str, dataset: str) -> str:
    """``<table>_<dataset>``: a sibling folder for a path, a sibling name in the same schema."""
    return f"{table.rstrip('/')}_{table_part(dataset)}"


class UnknownDatasetError(IngestError):
    """Files of a dataset no routing rule covers, with ``unknown_datasets: fail``."""


@dataclass(frozen=True)
class Routing:
    """Where each dataset goes. ``table`` is the conversation table (the job's ``table``)."""

    table: str
    conversation_datasets: Sequence[str] = ("conversations*",)
    dataset_tables: Mapping[str, str] = field(default_factory=dict)
    unknown_datasets: str = "auto"

    def target_of(self, dataset: str, conversation_shaped: bool = False) -> str | None:
        """The table for ``dataset``, or None when it is unknown and the policy is ``fail``."""
        if any(fnmatch.fnmatchcase(dataset, p) for p in self.conversation_datasets):
            return self.table
        for pattern, target in self.dataset_tables.items():
            if fnmatch.fnmatchcase(dataset, pattern):
                return target
        if self.unknown_datasets == "auto" and conversation_shaped:
            return self.table
        if self.unknown_datasets in ("auto", "table_per_dataset"):
            return sibling_table(self.table, dataset)
        return None

    def route(
        self, files: Sequence[F], name_of: Callable[[F], str], conversation_shaped: Callable[[F], bool]
    ) -> list[tuple[str, list[F]]]:
        """Group ``files`` by target table; the conversation table comes last.

        Writing the conversation table last keeps exactly-once across tables: the watermark is
        repaired from that table's commit after a crash, and by then every other table of the
        batch is committed (a retried write of those is skipped by its txnVersion).
        """
        groups: dict[str, list[F]] = {}
        unknown: dict[str, list[str]] = {}
        for f in files:
            name = name_of(f)
            dataset = dataset_of(name)
            target = self.target_of(dataset, conversation_shaped(f))
            if target is None:
                unknown.setdefault(dataset, []).append(name)
            else:
                groups.setdefault(target, []).append(f)
        if unknown:
            listing = "; ".join(f"{d!r} ({', '.join(sorted(n)[:3])})" for d, n in sorted(unknown.items()))
            raise UnknownDatasetError(
                f"files of unknown dataset(s) {listing}: map them with config key 'dataset_tables'"
                " (e.g. --set 'dataset_tables={users: catalog.schema.users}'), or set"
                " 'unknown_datasets=table_per_dataset'; nothing of this batch was committed"
            )
        order = sorted(groups, key=lambda t: (t == self.table, t))
        return [(t, groups[t]) for t in order]
