"""Helpers shared by the integration tests (importable as `helpers`)."""

from __future__ import annotations

from pathlib import Path

from repo361_ingest.auth import Credentials
from repo361_ingest.config import IngestConfig, load_config


def job_config(emu, tmp_path: Path, **overrides) -> IngestConfig:
    """A config pointing the job at ``emu`` with tables and staging under ``tmp_path``."""
    values = {
        "api_base_url": emu.api_base_url,
        "token_url": emu.token_url,
        "table": str(tmp_path / "conversations"),
        "watermark_table": str(tmp_path / "watermark"),
        "staging": str(tmp_path / "staging"),
    }
    set_items = [f"{k}={v}" for k, v in overrides.items()]
    return load_config(None, values, set_items, environ={}, cwd=tmp_path)


def emu_credentials(emu) -> Credentials:
    return Credentials(emu.client_id, emu.client_secret)

