"""Merging Avro writer schemas into one reader schema (no Spark): resolution checked with fastavro."""

from __future__ import annotations

import io
import json

import fastavro
import pytest

from repo361_ingest.avro_schema import (
    entities_field,
    is_conversation_schema,
    merge_schemas,
    safe_name,
)
from repo361_ingest.datasets import Routing, UnknownDatasetError, dataset_of, sibling_table
from repo361_ingest.emulator.schema import load_schema
from repo361_ingest.errors import SchemaConflictError


def roundtrip(writer: dict, records: list[dict], reader: object) -> list[dict]:
    """Write with ``writer``, read back resolved against ``reader`` (Avro schema resolution)."""
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(writer), records)
    buf.seek(0)
    return list(fastavro.reader(buf, reader_schema=fastavro.parse_schema(reader)))


def record(name: str, fields: list[tuple[str, object]], namespace: str = "t") -> dict:
    return {"type": "record", "name": name, "namespace": namespace,
            "fields": [{"name": n, "type": t} for n, t in fields]}


def find_field(schema: object, *path: str) -> dict:
    """The field at ``path`` (array/union levels skipped) in an emitted schema."""
    node = schema
    for name in path:
        while True:
            if isinstance(node, list):
                node = next(b for b in node if b != "null")
            elif isinstance(node, dict) and node.get("type") == "array":
                node = node["items"]
            elif isinstance(node, dict) and isinstance(node.get("type"), (dict, list)):
                node = node["type"]
            else:
                break
        found = next(f for f in node["fields"] if f["name"] == name)
        node = found["type"]
    return found


def test_emulator_v1_and_v2_merge_to_v2_and_both_resolve_against_it():
    v1, v2 = load_schema(1), load_schema(2)
    merged = merge_schemas([json.dumps(v1), v2])
    seg = find_field(merged, "Entities", "Participants", "Sessions", "Segments", "Sentiment")
    assert seg["type"] == ["null", "double"] and seg["default"] is None
    assert merge_schemas([v1, v2]) == merge_schemas([v2, v1]) == merge_schemas([v2])
    fastavro.parse_schema(merged)  # a valid schema


def test_new_nested_field_is_nullable_and_older_records_read_null():
    seg_v1 = record("Seg", [("SegmentType", "string")])
    seg_v2 = record("Seg", [("SegmentType", "string"), ("NewField", "long")])
    w1 = record("Page", [("Entities", {"type": "array", "items": record("Conv", [
        ("Id", "string"), ("Segments", {"type": "array", "items": seg_v1})])})])
    w2 = record("Page", [("Entities", {"type": "array", "items": record("Conv", [
        ("Id", "string"), ("Segments", {"type": "array", "items": seg_v2})])})])
    merged = merge_schemas([w1, w2])
    assert find_field(merged, "Entities", "Segments", "NewField") == {
        "name": "NewField", "type": ["null", "long"], "default": None}
    old = roundtrip(w1, [{"Entities": [{"Id": "a", "Segments": [{"SegmentType": "ivr"}]}]}], merged)
    new = roundtrip(w2, [{"Entities": [{"Id": "b", "Segments": [{"SegmentType": "acd", "NewField": 7}]}]}], merged)
    assert old == [{"Entities": [{"Id": "a", "Segments": [{"SegmentType": "ivr", "NewField": None}]}]}]
    assert new == [{"Entities": [{"Id": "b", "Segments": [{"SegmentType": "acd", "NewField": 7}]}]}]


def test_field_missing_from_newer_writer_becomes_nullable():
    w1 = record("R", [("Id", "string"), ("Gone", "int")])
    w2 = record("R", [("Id", "string")])
    merged = merge_schemas([w1, w2])
    assert merged["fields"] == [
        {"name": "Id", "type": "string"},
        {"name": "Gone", "type": ["null", "int"], "default": None},
    ]
    assert roundtrip(w2, [{"Id": "x"}], merged) == [{"Id": "x", "Gone": None}]


def test_safe_promotions_inside_maps_and_unions():
    w1 = record("R", [("M", {"type": "map", "values": record("V", [("N", "int"), ("F", ["null", "float"])])})])
    w2 = record("R", [("M", {"type": "map", "values": record("V", [("N", "long"), ("F", ["null", "double"])])})])
    merged = merge_schemas([w1, w2])
    values = merged["fields"][0]["type"]["values"]["fields"]
    assert values == [{"name": "N", "type": "long"},
                      {"name": "F", "type": ["null", "double"], "default": None}]
    assert roundtrip(w1, [{"M": {"k": {"N": 3, "F": 1.5}}}], merged) == [{"M": {"k": {"N": 3, "F": 1.5}}}]


@pytest.mark.parametrize(
    ("old", "new", "types"),
    [
        ("string", "long", "string vs long"),
        (["null", "long"], ["null", "string"], "long vs string"),
        ({"type": "long", "logicalType": "timestamp-millis"}, {"type": "long", "logicalType": "timestamp-micros"},
         "long (timestamp-millis) vs long (timestamp-micros)"),
        ("long", "int", None),  # promotion the other way round is still safe
        ({"type": "array", "items": "string"}, "string", "array<string> vs string"),
    ],
)
def test_unsafe_changes_name_the_nested_path_and_both_types(old, new, types):
    def page(t: object) -> dict:
        part = record("Participant", [("Purpose", t)])
        conv = record("Conv", [("Participants", ["null", {"type": "array", "items": part}])])
        return record("Page", [("Entities", ["null", {"type": "array", "items": conv}])])

    if types is None:
        merged = merge_schemas([page(old), page(new)])
        assert find_field(merged, "Entities", "Participants", "Purpose")["type"] == "long"
        return
    with pytest.raises(SchemaConflictError) as err:
        merge_schemas([page(old), page(new)])
    assert str(err.value) == (
        f"field Entities[].Participants[].Purpose has incompatible types in the batch's files: {types}"
    )


def test_enum_symbols_are_unioned_and_named_types_reused_by_reference():
    e1 = {"type": "enum", "name": "Media", "symbols": ["voice", "chat"]}
    e2 = {"type": "enum", "name": "Media", "symbols": ["voice", "email"]}
    w1 = record("R", [("A", e1), ("B", "t.Media")])
    w2 = record("R", [("A", e2), ("B", "t.Media")])
    merged = merge_schemas([w1, w2])
    assert merged["fields"][0]["type"]["symbols"] == ["voice", "chat", "email"]
    assert merged["fields"][1]["type"] == "t.Media"
    assert roundtrip(w2, [{"A": "email", "B": "voice"}], merged) == [{"A": "email", "B": "voice"}]


def test_names_delta_cannot_store_are_renamed_with_the_source_name_as_alias():
    w = record("R", [("a b", "string"), ("x,y;{z}(w)=v", "int"), ("Foo", "int"), ("foo", "int"), ("9lives", "int")])
    merged = merge_schemas([w])
    assert [(f["name"], f.get("aliases")) for f in merged["fields"]] == [
        ("a_b", ["a b"]),
        ("x_y__z__w__v", ["x,y;{z}(w)=v"]),
        ("Foo", None),
        ("foo__2", ["foo"]),
        ("_9lives", ["9lives"]),
    ]
    assert safe_name("Zoë") == "Zoë"


def test_entities_and_conversation_detection():
    assert is_conversation_schema(load_schema(1))
    users = record("UsersPage", [("Entities", ["null", {"type": "array", "items": record("User", [("Id", "string")])}])])
    assert entities_field(users)["name"] == "User" and not is_conversation_schema(users)
    assert entities_field(record("Flat", [("Id", "string")])) is None


# ---- datasets -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "dataset"),
    [
        ("conversations_detail_without_attributes_001", "conversations_detail_without_attributes"),
        ("users_001", "users"),
        ("queues", "queues"),
        ("evaluations_12.avro", "evaluations"),
        ("../../etc/users_3", "users"),
    ],
)
def test_dataset_is_the_file_name_without_its_numeric_suffix(name, dataset):
    assert dataset_of(name) == dataset


def test_routing_puts_the_conversation_table_last_and_never_drops_a_file():
    files = ["users_001", "conversations_detail_without_attributes_001", "queues_002", "odd name", "evals_1"]
    shaped = {"odd name"}
    routing = Routing("/lake/conv", dataset_tables={"users": "cat.s.users", "eval*": "/lake/evals"})
    routes = routing.route(files, str, lambda f: f in shaped)
    assert routes == [
        ("/lake/conv_queues", ["queues_002"]),
        ("/lake/evals", ["evals_1"]),
        ("cat.s.users", ["users_001"]),
        ("/lake/conv", ["conversations_detail_without_attributes_001", "odd name"]),
    ]
    assert sibling_table("cat.s.conv", "Queue Stats") == "cat.s.conv_queue_stats"
    with pytest.raises(UnknownDatasetError) as err:
        Routing("/lake/conv", unknown_datasets="fail").route(files, str, lambda f: True)
    assert "'queues' (queues_002)" in str(err.value) and "dataset_tables" in str(err.value)
