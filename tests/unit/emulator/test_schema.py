"""The committed schema has the SDK's shape; both copies agree; it loads as package data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest

from repo361_ingest.emulator.schema import datetime_fields, load_schema, record_fields

ROOT = Path(__file__).resolve().parents[3]
PACKAGE_SCHEMAS = ROOT / "lib" / "repo361_ingest" / "emulator" / "schemas"
CONF_SCHEMAS = ROOT / "conf" / "schema"
VARIANTS = ["conversation_detail_v1.avsc", "conversation_detail_v1_millis.avsc",
            "conversation_detail_v2.avsc", "conversation_detail_v2_millis.avsc"]

# Fixed expectations copied from purecloudplatformclientv2 269.0.0 (not computed from our code).
EXPECTED = {
    "ConversationDetailExportRecord": ["Entities", "PageSize", "PageNumber", "Total", "PageCount"],
    "AnalyticsParticipantWithoutAttributes": [
        "ExternalContactId", "ExternalOrganizationId", "FlaggedReason", "ParticipantId",
        "ParticipantName", "Purpose", "ScreenRecording", "TeamId", "UserId", "Sessions"],
    "AnalyticsSessionMetric": ["EmitDate", "Name", "Value"],
    "AnalyticsFlowOutcome": ["FlowOutcome", "FlowOutcomeEndTimestamp", "FlowOutcomeId",
                             "FlowOutcomeStartTimestamp", "FlowOutcomeValue"],
}
EXPECTED_SUBSETS = {
    "AnalyticsConversationWithoutAttributes": {
        "ConversationId", "ConversationStart", "ConversationEnd", "OriginatingDirection",
        "DivisionIds", "MediaStatsMinConversationMos", "Participants", "Evaluations", "Surveys",
        "Resolutions"},
    "AnalyticsSession": {"SessionId", "MediaType", "Direction", "Ani", "Dnis", "EdgeId",
                         "Segments", "Metrics", "Flow", "MediaEndpointStats", "ProposedAgents",
                         "AgentGroups", "RequestedRoutings"},
    "AnalyticsConversationSegment": {"SegmentStart", "SegmentEnd", "SegmentType", "QueueId",
                                     "DisconnectType", "WrapUpCode", "ScoredAgents", "Properties"},
    "AnalyticsMediaEndpointStat": {"Codecs", "MinMos", "MinRFactor", "ReceivedPackets"},
    "AnalyticsFlow": {"FlowId", "FlowName", "FlowType", "Outcomes", "TransferType"},
}


def _fields_by_name(schema: dict[str, Any], record: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(t: Any) -> None:
        if isinstance(t, list):
            for x in t:
                walk(x)
        elif isinstance(t, dict):
            if t.get("type") == "record":
                if t["name"] == record:
                    found.update({f["name"]: f for f in t["fields"]})
                for f in t["fields"]:
                    walk(f["type"])
            elif t.get("type") == "array":
                walk(t["items"])

    walk(schema)
    return found


def test_committed_schema_has_the_expected_records_and_fields() -> None:
    fields = record_fields(load_schema(1))
    assert len(fields) == 16
    for record, names in EXPECTED.items():
        assert fields[record] == names
    for record, names in EXPECTED_SUBSETS.items():
        assert names <= set(fields[record]), names - set(fields[record])
    assert len(fields["AnalyticsSession"]) == 89


def test_every_field_is_nullable_with_default_null_and_names_are_unique() -> None:
    text = (PACKAGE_SCHEMAS / "conversation_detail_v1.avsc").read_text()
    schema = json.loads(text)
    seen: list[str] = []

    def walk(t: Any) -> None:
        if isinstance(t, dict) and t.get("type") == "record":
            seen.append(t["name"])
            for f in t["fields"]:
                assert f["type"][0] == "null" and f["default"] is None, (t["name"], f["name"])
                assert f["name"][0].isupper(), f["name"]
                walk(f["type"])
        elif isinstance(t, dict) and t.get("type") == "array":
            walk(t["items"])
        elif isinstance(t, list):
            for x in t:
                walk(x)

    walk(schema)
    assert len(seen) == len(set(seen)) == 16
    fastavro.parse_schema(schema)  # valid Avro


def test_datetimes_are_strings_or_timestamp_millis() -> None:
    iso = _fields_by_name(load_schema(1, "iso"), "AnalyticsConversationSegment")
    millis = _fields_by_name(load_schema(1, "millis"), "AnalyticsConversationSegment")
    assert iso["SegmentStart"]["type"] == ["null", "string"]
    assert millis["SegmentStart"]["type"] == [
        "null", {"type": "long", "logicalType": "timestamp-millis"}]
    assert {"ConversationStart", "SegmentEnd", "EmitDate", "EventTime"} <= datetime_fields(1)
    assert "ConversationId" not in datetime_fields(1)


def test_v2_adds_nested_fields_only() -> None:
    v1, v2 = record_fields(load_schema(1)), record_fields(load_schema(2))
    added = {r: [f for f in v2[r] if f not in v1[r]] for r in v2}
    assert {r: a for r, a in added.items() if a} == {
        "AnalyticsConversationSegment": ["SegmentDurationMs", "Sentiment"],
        "AnalyticsParticipantWithoutAttributes": ["ParticipantRegion"],
        "AnalyticsConversationWithoutAttributes": ["ExportedAt"],
    }
    assert all(v2[r][:len(v1[r])] == v1[r] for r in v1)  # appended, order kept


@pytest.mark.parametrize("name", VARIANTS)
def test_conf_copy_equals_package_data(name: str) -> None:
    assert (CONF_SCHEMAS / name).read_bytes() == (PACKAGE_SCHEMAS / name).read_bytes()


def test_schema_matches_the_sdk_models_when_installed() -> None:
    models = pytest.importorskip("PureCloudPlatformClientV2.models")
    fields = record_fields(load_schema(1))
    for model in ("AnalyticsConversationWithoutAttributes", "AnalyticsParticipantWithoutAttributes",
                  "AnalyticsSession", "AnalyticsConversationSegment", "AnalyticsSessionMetric",
                  "AnalyticsMediaEndpointStat", "AnalyticsFlow"):
        json_names = list(getattr(models, model)().attribute_map.values())
        assert fields[model] == [n[0].upper() + n[1:] for n in json_names], model


def test_generator_output_equals_committed_files_when_sdk_installed() -> None:
    pytest.importorskip("PureCloudPlatformClientV2.models")
    # in-process (the SDK import is the slow part and is already done by the test above)
    spec = importlib.util.spec_from_file_location(
        "generate_avro_schema", ROOT / "scripts" / "generate_avro_schema.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered = module.render_all()
    assert sorted(rendered) == sorted(VARIANTS)
    for name, text in rendered.items():
        assert (PACKAGE_SCHEMAS / name).read_text(encoding="utf-8") == text, name
