"""Where downloaded files live between download and commit, and how Spark sees that place.

Staged files are named by position (``<page_seq>-<file_index>.avro``), never by the name the API
sent, so a hostile or odd name can neither escape the staging folder nor overwrite another file.
The API's name is kept in the manifest and lands in the ``_source_file`` column.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from urllib.parse import urlsplit

from repo361_ingest.errors import ConfigError


@dataclass(frozen=True)
class Staging:
    """A staging root as executors (plain file I/O) and Spark (a Hadoop path) each see it."""

    root: str

    @classmethod
    def from_config(cls, root: str) -> "Staging":
        scheme = urlsplit(root).scheme.lower()
        if scheme in ("", "file"):
            path = urlsplit(root).path if scheme == "file" else root
            return cls(os.path.abspath(path))
        if scheme == "dbfs":
            # Executors write through the /dbfs FUSE mount, Spark reads dbfs:/.
            return cls("/dbfs" + urlsplit(root).path)
        raise ConfigError(
            f"config key 'staging' has unsupported scheme '{scheme}:' ({root}); use a local or"
            " shared path, /dbfs/..., or /Volumes/..."
        )

    def batch_dir(self, source: str, run_id: str, batch_id: str) -> str:
        return os.path.join(self.root, _safe(source), _safe(run_id), _safe(batch_id))

    def run_dir(self, source: str, run_id: str) -> str:
        return os.path.join(self.root, _safe(source), _safe(run_id))

    @staticmethod
    def file_name(page_seq: int, file_index: int) -> str:
        return f"{page_seq:09d}-{file_index:05d}.avro"

    def spark_path(self, local_path: str) -> str:
        """The Hadoop path Spark reads for a file written at ``local_path`` by an executor."""
        if local_path.startswith("/dbfs/"):
            return "dbfs:" + local_path[len("/dbfs") :]
        if local_path.startswith("/Volumes/"):
            return local_path
        return "file://" + local_path

    @staticmethod
    def remove(path: str) -> None:
        """Delete a staged folder; missing is fine (a crashed run may have removed part of it)."""
        shutil.rmtree(path, ignore_errors=True)


def _safe(part: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in part).strip(".")
    return cleaned or "_"
