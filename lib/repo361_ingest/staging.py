"""Where downloaded files live between download and commit, and how Spark sees that place.

Staged files are named by position (``<page_seq>-<file_index>.avro``), never by the name the API
sent, so a hostile or odd name can neither escape the staging folder nor overwrite another file.
The API's name is kept in the manifest and lands in the ``_source_file`` column.

Object storage (``s3a://bucket/prefix``): executors write with ``pyarrow.fs.S3FileSystem`` (no
Hadoop on the Python side) and Spark reads the same keys through Hadoop's s3a connector (the
``hadoop-aws`` package and the AWS SDK bundle on the classpath). Both take the credentials from
the standard AWS chain (environment, instance profile); ``AWS_ENDPOINT_URL`` points pyarrow at an
S3-compatible endpoint (``spark.hadoop.fs.s3a.endpoint`` does the same for Spark).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
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
        if scheme in OBJECT_STORE_SCHEMES:
            parts = urlsplit(root)
            if not parts.netloc:
                raise ConfigError(f"config key 'staging' ({root}) names no bucket: use s3a://bucket/prefix")
            return cls(f"s3a://{parts.netloc}/{parts.path.strip('/')}".rstrip("/"))
        if scheme == "dbfs":
            # Executors write through the /dbfs FUSE mount, Spark reads dbfs:/.
            return cls("/dbfs" + urlsplit(root).path)
        raise ConfigError(
            f"config key 'staging' has unsupported scheme '{scheme}:' ({root}); use a local or"
            " shared path, /dbfs/..., /Volumes/..., or s3a://bucket/prefix"
        )

    def batch_dir(self, source: str, run_id: str, batch_id: str) -> str:
        return os.path.join(self.root, _safe(source), _safe(run_id), _safe(batch_id))

    def run_dir(self, source: str, run_id: str) -> str:
        return os.path.join(self.root, _safe(source), _safe(run_id))

    @staticmethod
    def file_name(page_seq: int, file_index: int) -> str:
        return f"{page_seq:09d}-{file_index:05d}.avro"

    @property
    def is_object_store(self) -> bool:
        return is_object_store(self.root)

    def spark_path(self, local_path: str) -> str:
        """The Hadoop path Spark reads for a file written at ``local_path`` by an executor."""
        if is_object_store(local_path):
            return local_path
        if local_path.startswith("/dbfs/"):
            return "dbfs:" + local_path[len("/dbfs") :]
        if local_path.startswith("/Volumes/"):
            return local_path
        return "file://" + local_path

    @staticmethod
    def remove(path: str) -> None:
        """Delete a staged folder; missing is fine (a crashed run may have removed part of it)."""
        if is_object_store(path):
            fs, key = _s3(path)
            with contextlib.suppress(OSError):
                fs.delete_dir(key)
            return
        shutil.rmtree(path, ignore_errors=True)


def _safe(part: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in part).strip(".")
    return cleaned or "_"


# ---- file I/O that works on local paths and object storage (used on the executors) -------------

OBJECT_STORE_SCHEMES = ("s3a", "s3")


def is_object_store(path: str) -> bool:
    return urlsplit(path).scheme.lower() in OBJECT_STORE_SCHEMES


def _s3(path: str) -> tuple[Any, str]:
    """(pyarrow S3 filesystem, "bucket/key") for an s3a:// or s3:// path."""
    from pyarrow import fs as pafs

    parts = urlsplit(path)
    options: dict[str, Any] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        ep = urlsplit(endpoint)
        options.update(endpoint_override=ep.netloc, scheme=ep.scheme or "https")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options), f"{parts.netloc}/{parts.path.lstrip('/')}"


def make_dirs(path: str) -> None:
    """Create a folder; object stores have none (a key's prefix needs no creating)."""
    if not is_object_store(path):
        os.makedirs(path, exist_ok=True)


@contextlib.contextmanager
def open_output(path: str) -> Iterator[IO[bytes]]:
    """A binary stream writing ``path``: local file, or an S3 multipart upload (visible on close)."""
    if not is_object_store(path):
        with open(path, "wb") as out:
            yield out
        return
    fs, key = _s3(path)
    with fs.open_output_stream(key) as out:
        yield out


@contextlib.contextmanager
def open_input(path: str) -> Iterator[IO[bytes]]:
    if not is_object_store(path):
        with open(path, "rb") as fo:
            yield fo
        return
    fs, key = _s3(path)
    with fs.open_input_file(key) as fo:  # seekable (fastavro's block reader seeks)
        yield fo


def replace(src: str, dest: str) -> None:
    """Move a finished ``.part`` file into place (on S3: a server-side copy and a delete)."""
    if not is_object_store(src):
        os.replace(src, dest)
        return
    fs, src_key = _s3(src)
    fs.move(src_key, _s3(dest)[1])


def remove_file(path: str) -> None:
    """Delete one file; missing is fine."""
    with contextlib.suppress(OSError, FileNotFoundError):
        if is_object_store(path):
            fs, key = _s3(path)
            fs.delete_file(key)
        else:
            os.remove(path)
