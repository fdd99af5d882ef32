"""Generate the Avro schema of one Repo361 conversation-detail export record.

Why a generator: the export's record shape is the Genesys Cloud analytics model
``AnalyticsConversationWithoutAttributes`` (and everything nested in it), which is defined by the
official SDK (PyPI ``purecloudplatformclientv2``). Walking the SDK models' ``swagger_types`` and
``attribute_map`` keeps our schema faithful to the vendor's definition instead of hand-copied.
The SDK is a dev-time dependency only: the generated ``.avsc`` files are committed, and the emulator
loads them at run time from package data.

Output (identical copies in both places):
  lib/repo361_ingest/emulator/schemas/conversation_detail_v{1,2}[_millis].avsc   (package data)
  conf/schema/conversation_detail_v{1,2}[_millis].avsc                          (for humans / the job)

Rules: field names PascalCase (``conversationId`` -> ``ConversationId``), every field nullable with
default null, enums as strings, datetimes as ISO-8601 strings (``_millis`` variants: long
``timestamp-millis``), each SDK model becomes one named record (defined once, then referenced by
name). v2 adds a few nested fields (in Segments, Participants and the conversation) to exercise
schema evolution.

Usage:  python scripts/generate_avro_schema.py [--check]
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_DIRS = [ROOT / "lib" / "repo361_ingest" / "emulator" / "schemas", ROOT / "conf" / "schema"]
NAMESPACE = "com.repo361.genesys"
ROOT_MODEL = "AnalyticsConversationWithoutAttributes"
PRIMITIVES: dict[str, Any] = {
    "str": "string",
    "int": "long",  # Genesys counts/ids can exceed 2^31 (e.g. byte counts); long is the safe choice
    "float": "double",
    "bool": "boolean",
    "date": "string",
    "object": "string",  # free-form JSON, serialised as text
}
# Fields added in schema version 2, keyed by SDK model name: (PascalCase name, Avro type).
V2_ADDITIONS: dict[str, list[tuple[str, Any]]] = {
    "AnalyticsConversationSegment": [("SegmentDurationMs", "long"), ("Sentiment", "double")],
    "AnalyticsParticipantWithoutAttributes": [("ParticipantRegion", "string")],
    ROOT_MODEL: [("ExportedAt", "datetime")],
}
_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(str, (.+)\)$")


def pascal(json_name: str) -> str:
    """``conversationId`` -> ``ConversationId`` (Repo361 capitalises only the first letter)."""
    return json_name[:1].upper() + json_name[1:]


def _model_class(name: str) -> Any:
    models = importlib.import_module("PureCloudPlatformClientV2.models")
    return getattr(models, name, None)


class SchemaBuilder:
    """Turns SDK model names into Avro types; remembers defined records so each is named once."""

    def __init__(self, millis: bool, version: int) -> None:
        self.millis = millis
        self.version = version
        self.defined: set[str] = set()
        self.stack: list[str] = []

    def datetime_type(self) -> Any:
        if self.millis:
            return {"type": "long", "logicalType": "timestamp-millis"}
        return "string"

    def avro_type(self, swagger: str) -> Any:
        if swagger == "datetime":
            return self.datetime_type()
        if swagger in PRIMITIVES:
            return PRIMITIVES[swagger]
        m = _LIST.match(swagger)
        if m:
            return {"type": "array", "items": self.avro_type(m.group(1))}
        m = _DICT.match(swagger)
        if m:
            return {"type": "map", "values": self.avro_type(m.group(1))}
        if _model_class(swagger) is None:
            raise ValueError(f"unknown swagger type {swagger!r}")
        return self.record(swagger)

    def record(self, model: str) -> Any:
        if model in self.stack:
            # Spark cannot read recursive Avro schemas; the SDK models we walk have none today.
            raise ValueError(f"recursive model {model} via {' -> '.join(self.stack)}")
        if model in self.defined:
            return f"{NAMESPACE}.{model}"
        self.stack.append(model)
        instance = _model_class(model)()
        fields = []
        seen: set[str] = set()
        for attr, swagger in instance.swagger_types.items():
            name = pascal(instance.attribute_map[attr])
            if name.lower() in seen:
                raise ValueError(f"{model}: field {name} collides case-insensitively")
            seen.add(name.lower())
            fields.append(_nullable(name, self.avro_type(swagger)))
        if self.version >= 2:
            for name, typ in V2_ADDITIONS.get(model, []):
                fields.append(_nullable(name, self.datetime_type() if typ == "datetime" else typ))
        self.stack.pop()
        self.defined.add(model)
        return {
            "type": "record",
            "name": model,
            "namespace": NAMESPACE,
            "doc": f"Genesys Cloud SDK model {model} (purecloudplatformclientv2), PascalCase fields.",
            "fields": fields,
        }


def _nullable(name: str, avro_type: Any) -> dict[str, Any]:
    return {"name": name, "type": ["null", avro_type], "default": None}


def build_schema(version: int, millis: bool) -> dict[str, Any]:
    """The top-level export record: one page of conversation-detail results (``Entities``)."""
    builder = SchemaBuilder(millis=millis, version=version)
    conversation = builder.record(ROOT_MODEL)
    return {
        "type": "record",
        "name": "ConversationDetailExportRecord",
        "namespace": NAMESPACE,
        "doc": (
            f"Repo361 raw-data export record, conversations detail without attributes, v{version}"
            f" ({'timestamp-millis' if millis else 'ISO-8601 string'} datetimes)."
            " Generated by scripts/generate_avro_schema.py; do not edit."
        ),
        "fields": [
            _nullable("Entities", {"type": "array", "items": conversation}),
            _nullable("PageSize", "long"),
            _nullable("PageNumber", "long"),
            _nullable("Total", "long"),
            _nullable("PageCount", "long"),
        ],
    }


def file_name(version: int, millis: bool) -> str:
    return f"conversation_detail_v{version}{'_millis' if millis else ''}.avsc"


def render_all() -> dict[str, str]:
    """File name -> JSON text for every variant."""
    out = {}
    for version in (1, 2):
        for millis in (False, True):
            text = json.dumps(build_schema(version, millis), indent=2, ensure_ascii=False) + "\n"
            out[file_name(version, millis)] = text
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed files differ")
    args = parser.parse_args(argv)
    try:
        import PureCloudPlatformClientV2  # noqa: F401
    except ImportError:
        print("purecloudplatformclientv2 is not installed (pip install purecloudplatformclientv2)",
              file=sys.stderr)
        return 2
    stale = []
    for name, text in render_all().items():
        for folder in OUT_DIRS:
            path = folder / name
            if args.check:
                if not path.exists() or path.read_text(encoding="utf-8") != text:
                    stale.append(str(path))
            else:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale schema files, rerun scripts/generate_avro_schema.py:\n  " + "\n  ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
