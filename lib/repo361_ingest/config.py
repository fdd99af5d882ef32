"""Configuration: YAML files, then environment, then command-line overrides, validated once.

Precedence (later wins): built-in defaults < ``conf/defaults.yaml`` < ``conf/local.yaml`` (or the
file given with ``--config``) < ``REPO361_<KEY>`` environment variables < command-line flags and
``--set key=value``. Unknown keys are rejected with the closest known key, so a typo fails at
start-up instead of being silently ignored. Secrets are never config keys: see ``credentials``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from repo361_ingest.errors import ConfigError

DEFAULT_API_BASE_URL = "https://api.repo361.com"
DEFAULT_TOKEN_URL = "https://api.repo361.com/security/oauth2/token"
ENV_PREFIX = "REPO361_"
# Environment variables with the prefix that are not config keys (credentials are read elsewhere).
_NON_CONFIG_ENV = {"REPO361_CLIENT_ID", "REPO361_CLIENT_SECRET"}


class IngestConfig(BaseModel):
    """Every setting of a run. Field docs are the reference the README's key table mirrors."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    source: str = Field("repo361", description="Name of the export in the watermark table.")
    api_base_url: str = DEFAULT_API_BASE_URL
    token_url: str = DEFAULT_TOKEN_URL
    table: str | None = Field(None, description="Target Delta table: a path or catalog.schema.table.")
    watermark_table: str | None = Field(None, description="Watermark Delta table: a path or a name.")
    ledger_table: str | None = Field(
        None, description="File ledger Delta table; default: the watermark table + '_files'."
    )
    staging: str | None = Field(None, description="Staging root visible to every executor.")
    format: Literal["avro"] = "avro"
    max_pages: int | None = Field(None, ge=1)
    max_empty_pages: int = Field(3, ge=0)
    batch_max_pages: int = Field(200, ge=1)
    batch_max_files: int = Field(1000, ge=1)
    batch_max_bytes: int = Field(
        2 * 1024**3, ge=1,
        description="Staged bytes per batch (every file of a batch is staged before it is read):"
        " the next batch takes at most this many bytes' worth of files at the mean file size so"
        " far, and at least one page.",
    )
    lookahead_pages: int = Field(
        250, ge=0,
        description="Pages fetched ahead of the batch being committed; keep it above batch_max_pages"
        " so paging never waits for a commit.",
    )
    download_parallelism: int = Field(
        0, ge=0, description="Download tasks per batch; 0 = Spark's default parallelism (one per core)."
    )
    download_threads: int = Field(4, ge=1, le=64, description="Downloads at a time in each download task.")
    partition_by: list[str] = Field(default_factory=list)
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(120.0, gt=0)
    http_retries: int = Field(5, ge=0)
    backoff_factor_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    max_url_renewals: int = Field(3, ge=0)
    url_renew_fraction: float = Field(
        0.5, ge=0, le=1,
        description="Renew a batch's download URLs before downloading once its pages are older"
        " than this fraction of expiryHours.",
    )
    max_download_bytes: int = Field(4 * 1024**3, ge=1)
    ca_bundle: str | None = Field(None, description="Extra CA bundle (PEM) for TLS verification.")
    log_level: str = "INFO"
    secret_scope: str | None = Field(None, description="Databricks secret scope with the credentials.")
    secret_client_id_key: str = "client-id"
    secret_client_secret_key: str = "client-secret"
    keep_staging: bool = False
    timestamp_fields: Literal["auto", "none"] | list[str] = Field(
        "auto",
        description="String fields parsed as UTC timestamps: auto (names ending in Start, End, Date,"
        " Time, Timestamp, At), none, or a list of names / dotted paths.",
    )
    conversation_datasets: list[str] = Field(
        default_factory=lambda: ["conversations*"],
        description="Dataset name patterns (glob) routed to the conversation table.",
    )
    dataset_tables: dict[str, str] = Field(
        default_factory=dict, description="Dataset name pattern (glob) -> table (path or name)."
    )
    unknown_datasets: Literal["auto", "table_per_dataset", "fail"] = Field(
        "auto", description="Datasets no rule covers: auto, table_per_dataset (<table>_<dataset>), fail."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, v: str) -> str:
        level = v.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("timestamp_fields", mode="before")
    @classmethod
    def _timestamp_fields(cls, v: object) -> object:
        if isinstance(v, str) and v not in ("auto", "none"):
            raise ValueError("must be auto, none, or a list of field names / dotted paths")
        if isinstance(v, list) and (not v or not all(isinstance(x, str) and x.strip() for x in v)):
            raise ValueError("a list must hold non-empty field names (use 'none' to parse nothing)")
        return v

    @field_validator("api_base_url", "token_url")
    @classmethod
    def _no_trailing_slash(cls, v: str) -> str:
        return v.rstrip("/")

    @property
    def ledger(self) -> str:
        """The file ledger table, derived from the watermark table unless set."""
        if self.ledger_table:
            return self.ledger_table
        return f"{self.require('watermark_table')}_files"

    def require(self, key: str) -> str:
        """Return a required string setting or fail naming the key and how to set it."""
        value = getattr(self, key)
        if not value:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"config key '{key}' is required: pass {flag}, set {ENV_PREFIX}{key.upper()}, "
                f"or add '{key}:' to the YAML config"
            )
        return str(value)


KNOWN_KEYS = tuple(IngestConfig.model_fields)


def _unknown_key_error(key: str, origin: str) -> ConfigError:
    close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{key}' in {origin}{hint}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    for key in data:
        if key not in KNOWN_KEYS:
            raise _unknown_key_error(str(key), f"config file {path}")
    return data


def default_config_files(cwd: Path | None = None) -> list[Path]:
    """The files read when ``--config`` is not given: conf/defaults.yaml then conf/local.yaml."""
    base = (cwd or Path.cwd()) / "conf"
    return [p for p in (base / "defaults.yaml", base / "local.yaml") if p.is_file()]


def env_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """Config keys set as ``REPO361_<KEY>`` in the environment (credentials excluded)."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _NON_CONFIG_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in KNOWN_KEYS:
            found[key] = value
    return found


def parse_set_options(items: list[str]) -> dict[str, Any]:
    """Parse ``--set key=value`` items; values are YAML scalars/lists (``[a, b]``, ``3``, ``true``)."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        if key not in KNOWN_KEYS:
            raise _unknown_key_error(key, "--set")
        try:
            parsed[key] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            parsed[key] = raw
    return parsed


def build_config(layers: list[tuple[str, Mapping[str, Any]]]) -> IngestConfig:
    """Merge layers (origin name, mapping) in order and validate the result.

    The error for a bad value names the key and the layer it came from.
    """
    merged: dict[str, Any] = {}
    origin_of: dict[str, str] = {}
    for origin, layer in layers:
        for key, value in layer.items():
            if key not in KNOWN_KEYS:
                raise _unknown_key_error(key, origin)
            if value is None and origin.startswith("command line"):
                continue  # an unset flag does not erase a file's value
            merged[key] = value
            origin_of[key] = origin
    try:
        return IngestConfig(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        where = origin_of.get(key, "defaults")
        raise ConfigError(
            f"config key '{key}' (from {where}) is invalid: {first['msg']}"
            f" (got {first.get('input')!r})"
        ) from None


def load_config(
    config_path: str | None = None,
    cli_values: Mapping[str, Any] | None = None,
    set_items: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> IngestConfig:
    """Load the effective configuration of a run (see module doc for the precedence)."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    files = [Path(config_path)] if config_path else default_config_files(cwd)
    for path in files:
        layers.append((f"config file {path}", _read_yaml(path)))
    layers.append(("environment", env_overrides(os.environ if environ is None else environ)))
    layers.append(("command line", dict(cli_values or {})))
    layers.append(("command line --set", parse_set_options(set_items or [])))
    return build_config(layers)
