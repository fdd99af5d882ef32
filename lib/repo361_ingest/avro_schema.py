"""Merge Avro writer schemas into one reader schema (Spark-free).

spark-avro reads every file of one load with a single Avro schema. Given a *reader* schema (the
``avroSchema`` option), each file is decoded with Avro's schema resolution: its own writer schema
is resolved against the reader schema, so fields the writer lacks come out as their default
(null) and nothing the writer has is lost as long as the reader schema has it too. This module
builds that reader schema from every writer schema of a batch:

* named types (record, enum, fixed) are merged by full name, wherever they occur;
* record fields are unioned recursively, also inside arrays, maps and unions; a field missing
  from some writer becomes nullable (``null`` first) with default ``null``;
* safe promotions: ``int`` -> ``long`` and ``float`` -> ``double`` (Avro resolves both);
* enum symbols are unioned (Spark reads enums as strings);
* anything else that differs (``string`` vs ``long``, ``timestamp-millis`` vs ``timestamp-micros``,
  a record vs an array, two fixed sizes) raises :class:`SchemaConflictError` naming the field path
  and both types.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from repo361_ingest.errors import SchemaConflictError

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "enum", "fixed"})
# Logical types that do not change what a value means to Spark when merged with the bare type.
_NEUTRAL_LOGICAL = frozenset({"uuid"})
_PROMOTIONS = {("int", "long"): "long", ("long", "int"): "long",
               ("float", "double"): "double", ("double", "float"): "double"}

Node = Any  # a normalised type: dict (primitive/array/map/ref), or list (union)


class _Registry:
    """Named types by full name, plus the field path where each was first seen (for messages)."""

    def __init__(self) -> None:
        self.types: dict[str, dict[str, Any]] = {}
        self.paths: dict[str, str] = {}
        self.order: list[str] = []


def _full_name(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _normalise(schema: Any, namespace: str | None, reg: _Registry, path: str,
               local: dict[str, dict[str, Any]]) -> Node:
    """Turn an Avro JSON type into a node; named types go to ``local`` and become refs."""
    if isinstance(schema, list):
        return [_normalise(b, namespace, reg, path, local) for b in schema]
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return {"type": schema}
        full = _full_name(schema, namespace)
        if full not in local:
            raise SchemaConflictError(f"field {path or '<root>'}: unknown type name {schema!r}")
        return {"ref": full}
    if not isinstance(schema, dict):
        raise SchemaConflictError(f"field {path or '<root>'}: not an Avro type: {schema!r}")
    kind = schema.get("type")
    if kind in NAMED:
        full = _full_name(schema["name"], schema.get("namespace", namespace))
        inner_ns = full.rsplit(".", 1)[0] if "." in full else None
        definition: dict[str, Any] = {"type": kind, "name": full}
        local[full] = definition
        reg.paths.setdefault(full, path or "<root>")
        if kind == "record":
            definition["fields"] = [
                {
                    **{k: v for k, v in f.items() if k in ("name", "default", "doc", "aliases")},
                    "node": _normalise(f["type"], inner_ns, reg, _join(path, f["name"]), local),
                }
                for f in schema["fields"]
            ]
        elif kind == "enum":
            definition["symbols"] = list(schema["symbols"])
            if "default" in schema:
                definition["default"] = schema["default"]
        else:
            definition["size"] = schema["size"]
            if "logicalType" in schema:
                definition["logical"] = {k: schema[k] for k in ("logicalType", "precision", "scale")
                                         if k in schema}
        return {"ref": full}
    if kind == "array":
        return {"type": "array", "items": _normalise(schema["items"], namespace, reg, path + "[]", local)}
    if kind == "map":
        return {"type": "map", "values": _normalise(schema["values"], namespace, reg, path + "{}", local)}
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in PRIMITIVES):
        return _normalise(kind, namespace, reg, path, local)  # {"type": {...}} or a named ref
    node = {"type": kind}
    for key in ("logicalType", "precision", "scale"):
        if key in schema:
            node[key] = schema[key]
    if node.get("logicalType") in _NEUTRAL_LOGICAL:
        del node["logicalType"]
    return node


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def describe(node: Node, reg: _Registry | None = None) -> str:
    """A short, readable type for messages: ``long (timestamp-millis)``, ``array<record X>``."""
    if isinstance(node, list):
        return "union[" + ", ".join(describe(b, reg) for b in node) + "]"
    if "ref" in node:
        kind = reg.types[node["ref"]]["type"] if reg and node["ref"] in reg.types else "type"
        return f"{kind} {node['ref']}"
    if node["type"] == "array":
        return f"array<{describe(node['items'], reg)}>"
    if node["type"] == "map":
        return f"map<{describe(node['values'], reg)}>"
    extra = [str(node[k]) for k in ("logicalType", "precision", "scale") if k in node]
    return node["type"] + (f" ({', '.join(extra)})" if extra else "")


def _kind(node: Node) -> str:
    if "ref" in node:
        return "ref:" + node["ref"]
    return str(node["type"])


class _Merger:
    def __init__(self) -> None:
        self.reg = _Registry()

    def conflict(self, path: str, a: Node, b: Node) -> SchemaConflictError:
        return SchemaConflictError(
            f"field {path or '<root>'} has incompatible types in the batch's files:"
            f" {describe(a, self.reg)} vs {describe(b, self.reg)}"
        )

    def add(self, schema: Any) -> Node:
        """Normalise one writer schema and merge its named types into the registry."""
        local: dict[str, dict[str, Any]] = {}
        paths = _Registry()
        node = _normalise(schema, None, paths, "", local)
        for full, definition in local.items():
            self.reg.paths.setdefault(full, paths.paths.get(full, full))
            if full not in self.reg.types:
                self.reg.types[full] = definition
                self.reg.order.append(full)
            else:
                self.reg.types[full] = self.merge_named(self.reg.types[full], definition)
        return node

    def merge_named(self, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        path = self.reg.paths.get(a["name"], a["name"])
        if a["type"] != b["type"]:
            raise SchemaConflictError(
                f"field {path}: named type {a['name']} is a {a['type']} in one file and a"
                f" {b['type']} in another"
            )
        if a["type"] == "enum":
            return {**a, "symbols": a["symbols"] + [s for s in b["symbols"] if s not in a["symbols"]]}
        if a["type"] == "fixed":
            if a["size"] != b["size"] or a.get("logical") != b.get("logical"):
                raise SchemaConflictError(
                    f"field {path}: fixed {a['name']} has size/logical type {a['size']}"
                    f" {a.get('logical')} vs {b['size']} {b.get('logical')}"
                )
            return a
        fields: dict[str, dict[str, Any]] = {f["name"]: dict(f) for f in a["fields"]}
        in_both = {f["name"] for f in b["fields"]} & set(fields)
        for f in b["fields"]:
            if f["name"] in fields:
                fields[f["name"]]["node"] = self.merge(
                    fields[f["name"]]["node"], f["node"], _join(path, f["name"])
                )
            else:
                fields[f["name"]] = dict(f)
        for name, f in fields.items():
            if name not in in_both:
                f["optional"] = True  # missing from some writer: must be nullable, default null
        return {**a, "fields": list(fields.values())}

    def merge(self, a: Node, b: Node, path: str) -> Node:
        if a == b:
            return a
        if isinstance(a, list) or isinstance(b, list):
            return self.merge_union(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b], path)
        ka, kb = _kind(a), _kind(b)
        if ka != kb:
            promoted = _PROMOTIONS.get((ka, kb))
            if promoted and "logicalType" not in a and "logicalType" not in b:
                return {"type": promoted}
            raise self.conflict(path, a, b)
        if ka == "array":
            return {"type": "array", "items": self.merge(a["items"], b["items"], path + "[]")}
        if ka == "map":
            return {"type": "map", "values": self.merge(a["values"], b["values"], path + "{}")}
        if ka.startswith("ref:"):
            return a  # named types are merged by full name in the registry
        raise self.conflict(path, a, b)  # same primitive, different logical type / decimal

    def merge_union(self, a: list[Node], b: list[Node], path: str) -> list[Node]:
        out = list(a)
        for branch in b:
            matches = [i for i, x in enumerate(out) if _compatible(x, branch)]
            if matches:
                out[matches[0]] = self.merge(out[matches[0]], branch, path)
                continue
            if branch == {"type": "null"} or not [x for x in out if x != {"type": "null"}]:
                out.append(branch)
                continue
            non_null_a = [x for x in out if x != {"type": "null"}]
            raise self.conflict(path, non_null_a[0] if len(non_null_a) == 1 else non_null_a, branch)
        return out


def _compatible(a: Node, b: Node) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return False
    ka, kb = _kind(a), _kind(b)
    if ka == kb:
        return True
    return (ka, kb) in _PROMOTIONS and "logicalType" not in a and "logicalType" not in b


def _nullable(node: Node) -> list[Node]:
    branches = node if isinstance(node, list) else [node]
    rest = [b for b in branches if b != {"type": "null"}]
    return [{"type": "null"}, *rest]


def _emit(node: Node, reg: _Registry, emitted: set[str]) -> Any:
    if isinstance(node, list):
        return [_emit(b, reg, emitted) for b in node]
    if "ref" in node:
        full = node["ref"]
        if full in emitted:
            return full
        emitted.add(full)
        d = reg.types[full]
        if d["type"] == "enum":
            out: dict[str, Any] = {"type": "enum", "name": full, "symbols": d["symbols"]}
            if "default" in d:
                out["default"] = d["default"]
            return out
        if d["type"] == "fixed":
            return {"type": "fixed", "name": full, "size": d["size"], **d.get("logical", {})}
        fields = []
        taken: set[str] = set()
        for f in d["fields"]:
            field_node = f["node"]
            nullable = isinstance(field_node, list) and {"type": "null"} in field_node
            if f.get("optional") or nullable:
                field_node = _nullable(field_node)
            name = _unique(safe_name(f["name"]), taken)
            entry: dict[str, Any] = {"name": name, "type": _emit(field_node, reg, emitted)}
            if f.get("optional") or nullable:
                entry["default"] = None
            elif "default" in f:
                entry["default"] = f["default"]
            if "doc" in f:
                entry["doc"] = f["doc"]
            aliases = list(f.get("aliases", [])) + ([f["name"]] if name != f["name"] else [])
            if aliases:
                entry["aliases"] = aliases  # Avro resolution maps the writer's name to ours
            fields.append(entry)
        return {"type": "record", "name": full, "fields": fields}
    if node["type"] == "array":
        return {"type": "array", "items": _emit(node["items"], reg, emitted)}
    if node["type"] == "map":
        return {"type": "map", "values": _emit(node["values"], reg, emitted)}
    if len(node) == 1:
        return node["type"]
    return dict(node)


def safe_name(name: str) -> str:
    """The column name a source field gets: letters, digits and ``_`` kept, anything else ``_``.

    Avro's Java parser (used by spark-avro for the reader schema) accepts only such names, and
    they are also the names Delta can store without column mapping (no spaces, ``,;{}()=``, tabs or
    newlines). A name that does not start with a letter or ``_`` gets a leading ``_``.
    """
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not out or not (out[0].isalpha() or out[0] == "_"):
        out = "_" + out
    return out


def _unique(name: str, taken: set[str]) -> str:
    """Spark and Delta compare column names case-insensitively: ``foo`` after ``Foo`` -> ``foo__2``."""
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{name}__{n}"
    taken.add(candidate.lower())
    return candidate


def _unwrap(t: Any) -> Any:
    if isinstance(t, list):
        rest = [b for b in t if b != "null" and b != {"type": "null"}]
        return rest[0] if len(rest) == 1 else None
    if isinstance(t, dict) and isinstance(t.get("type"), (dict, list)):
        return _unwrap(t["type"])
    return t


def entities_field(schema: Any) -> dict[str, Any] | None:
    """The record type of the top-level ``Entities`` array (the conversations), if there is one."""
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    if not isinstance(parsed, dict) or parsed.get("type") != "record":
        return None
    for f in parsed.get("fields", []):
        if f["name"] == "Entities":
            array = _unwrap(f["type"])
            if isinstance(array, dict) and array.get("type") == "array":
                items = _unwrap(array["items"])
                if isinstance(items, dict) and items.get("type") == "record":
                    return items
    return None


def is_conversation_schema(schema: Any) -> bool:
    """True when records carry ``Entities[]`` with a ``ConversationId``: conversation details."""
    items = entities_field(schema)
    return items is not None and any(f["name"] == "ConversationId" for f in items.get("fields", []))


def merge_schemas(schemas: Iterable[Any]) -> Any:
    """One reader schema that every given writer schema resolves against without losing data.

    ``schemas`` are Avro schemas as JSON strings or parsed JSON. Raises ``SchemaConflictError``
    naming the field path and both types when two writers disagree in a way Avro cannot resolve
    safely.
    """
    merger = _Merger()
    root: Node | None = None
    for schema in schemas:
        parsed = json.loads(schema) if isinstance(schema, str) else copy.deepcopy(schema)
        node = merger.add(parsed)
        root = node if root is None else merger.merge(root, node, "")
    if root is None:
        raise ValueError("merge_schemas needs at least one schema")
    return _emit(root, merger.reg, set())
