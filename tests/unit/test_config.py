"""Config precedence and validation: YAML < env < flags, unknown keys named, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo361_ingest.config import DEFAULT_API_BASE_URL, load_config
from repo361_ingest.errors import ConfigError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_precedence_yaml_then_env_then_flags(tmp_path: Path) -> None:
    write(tmp_path, "conf/defaults.yaml", "table: from-defaults\nbatch_max_pages: 7\nstaging: /s\n")
    write(tmp_path, "conf/local.yaml", "table: from-local\nwatermark_table: wm-local\n")
    env = {"REPO361_WATERMARK_TABLE": "wm-env", "REPO361_CLIENT_SECRET": "not-a-key"}
    cfg = load_config(None, {"staging": "/flag", "table": None}, ["max_pages=4"], environ=env, cwd=tmp_path)
    assert cfg.table == "from-local"  # an unset flag does not erase the file's value
    assert cfg.watermark_table == "wm-env"
    assert cfg.staging == "/flag"
    assert cfg.batch_max_pages == 7
    assert cfg.max_pages == 4
    assert cfg.api_base_url == DEFAULT_API_BASE_URL


def test_explicit_config_replaces_conf_folder(tmp_path: Path) -> None:
    write(tmp_path, "conf/local.yaml", "table: from-local\n")
    other = write(tmp_path, "other.yaml", "table: from-other\npartition_by: [_conversation_date]\n")
    cfg = load_config(str(other), {}, [], environ={}, cwd=tmp_path)
    assert cfg.table == "from-other"
    assert cfg.partition_by == ["_conversation_date"]


def test_unknown_key_in_file_is_named_with_suggestion(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "tabel: x\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'tabel' in config file .*bad.yaml \(did you mean 'table'\?\)"):
        load_config(str(bad), {}, [], environ={})


def test_bad_value_names_key_and_origin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config key 'max_pages' \(from command line --set\) is invalid"):
        load_config(None, {}, ["max_pages=0"], environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"config key 'format' \(from command line\) is invalid"):
        load_config(None, {"format": "parquet"}, [], environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"--set expects key=value, got 'oops'"):
        load_config(None, {}, ["oops"], environ={}, cwd=tmp_path)


def test_require_names_flag_and_env(tmp_path: Path) -> None:
    cfg = load_config(None, {}, [], environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match=r"'watermark_table' is required: pass --watermark-table, set REPO361_WATERMARK_TABLE"):
        cfg.require("watermark_table")


def test_ledger_defaults_next_to_watermark(tmp_path: Path) -> None:
    cfg = load_config(None, {"watermark_table": "cat.sch.wm"}, [], environ={}, cwd=tmp_path)
    assert cfg.ledger == "cat.sch.wm_files"


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    bad = write(tmp_path, "broken.yaml", "table: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(str(bad), {}, [], environ={})
