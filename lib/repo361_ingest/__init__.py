"""repo361_ingest: Repo361 (Genesys Cloud) raw-data export -> Delta Lake, with PySpark.

Python API::

    from repo361_ingest import load_config, run_ingest, get_session, resolve_credentials
    config = load_config(None, {"table": ..., "watermark_table": ..., "staging": ...})
    spark = get_session()
    summary = run_ingest(spark, config, resolve_credentials(config))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load_config", "run_ingest", "get_session", "resolve_credentials", "IngestConfig", "RunSummary"]

if TYPE_CHECKING:
    from repo361_ingest.config import IngestConfig, load_config
    from repo361_ingest.credentials import resolve_credentials
    from repo361_ingest.run import RunSummary, run_ingest
    from repo361_ingest.spark import get_session

_LAZY = {
    "load_config": "repo361_ingest.config",
    "IngestConfig": "repo361_ingest.config",
    "resolve_credentials": "repo361_ingest.credentials",
    "run_ingest": "repo361_ingest.run",
    "RunSummary": "repo361_ingest.run",
    "get_session": "repo361_ingest.spark",
}


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (e.g. on executors, or for the emulator) does not import pyspark.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
