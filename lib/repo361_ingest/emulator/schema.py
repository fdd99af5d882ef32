"""Load the committed conversation-detail Avro schema (package data, works from an installed wheel).

The schema is generated once from the Genesys SDK by ``scripts/generate_avro_schema.py``; at run time
we only read the ``.avsc`` so the SDK is never a runtime dependency.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

SCHEMA_VERSIONS = (1, 2)
TIMESTAMP_STYLES = ("iso", "millis")


def schema_file_name(version: int, timestamps: str) -> str:
    """Name of the packaged ``.avsc`` for a schema version and datetime style."""
    if version not in SCHEMA_VERSIONS:
        raise ValueError(f"schema_version must be one of {SCHEMA_VERSIONS}, got {version!r}")
    if timestamps not in TIMESTAMP_STYLES:
        raise ValueError(f"timestamps must be one of {TIMESTAMP_STYLES}, got {timestamps!r}")
    return f"conversation_detail_v{version}{'_millis' if timestamps == 'millis' else ''}.avsc"


@functools.lru_cache(maxsize=None)
def _load_text(name: str) -> str:
    return resources.files("repo361_ingest.emulator").joinpath("schemas").joinpath(name).read_text("utf-8")


def load_schema(version: int = 1, timestamps: str = "iso") -> dict[str, Any]:
    """The export record schema as a fresh JSON dict (callers may mutate it)."""
    loaded: dict[str, Any] = json.loads(_load_text(schema_file_name(version, timestamps)))
    return loaded


def record_fields(schema: dict[str, Any]) -> dict[str, list[str]]:
    """Record name -> its field names, for every named record in the schema (tests, defaults)."""
    out: dict[str, list[str]] = {}

    def walk(t: Any) -> None:
        if isinstance(t, list):
            for branch in t:
                walk(branch)
        elif isinstance(t, dict):
            if t.get("type") == "record" and t["name"] not in out:
                out[t["name"]] = [f["name"] for f in t["fields"]]
                for f in t["fields"]:
                    walk(f["type"])
            elif t.get("type") == "array":
                walk(t["items"])
            elif t.get("type") == "map":
                walk(t["values"])

    walk(schema)
    return out


def conversation_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The conversation record (the items of ``Entities``), self-contained."""
    entities = next(f for f in schema["fields"] if f["name"] == "Entities")
    array = next(t for t in entities["type"] if isinstance(t, dict))
    items: dict[str, Any] = array["items"]
    return items


@functools.lru_cache(maxsize=None)
def _datetime_fields(version: int) -> frozenset[str]:
    names: set[str] = set()

    def walk(t: Any) -> None:
        if isinstance(t, list):
            for branch in t:
                walk(branch)
        elif isinstance(t, dict):
            if t.get("type") == "record":
                for f in t["fields"]:
                    types = f["type"] if isinstance(f["type"], list) else [f["type"]]
                    if any(isinstance(x, dict) and x.get("logicalType") == "timestamp-millis"
                           for x in types):
                        names.add(f["name"])
                    walk(f["type"])
            elif t.get("type") == "array":
                walk(t["items"])
            elif t.get("type") == "map":
                walk(t["values"])

    walk(load_schema(version, "millis"))
    return frozenset(names)


def datetime_fields(version: int) -> set[str]:
    """Field names that hold datetimes anywhere in the schema (taken from the millis variant)."""
    return set(_datetime_fields(version))
