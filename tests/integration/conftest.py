from __future__ import annotations

import pytest

from helpers import job_config
from repo361_ingest.config import IngestConfig


@pytest.fixture
def make_config(tmp_path):
    """make_config(emu, key=value, ...) -> a config for ``emu`` with tables under tmp_path."""

    def make(emu, **overrides) -> IngestConfig:
        return job_config(emu, tmp_path, **overrides)

    return make


def pytest_collection_modifyitems(items):
    # Everything under tests/integration needs Spark: `pytest -m "not spark"` skips it.
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.spark)
