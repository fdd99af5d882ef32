"""Schema drift and instants, end to end: emulator files of schema v1 and v2 (ISO and millis
instants) mixed in one batch and across runs; type changes fail the batch and commit nothing."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from repo361_ingest.emulator import Emulator
from repo361_ingest.emulator.data import ConversationFactory
from repo361_ingest.emulator.schema import load_schema
from repo361_ingest.errors import SchemaConflictError
from repo361_ingest.run import run_ingest
from repo361_ingest.watermark import read_position

from avro_files import FileServer, add_files, ms, write_avro
from helpers import emu_credentials

pytestmark = pytest.mark.spark

SEGMENTS = (
    "flatten(flatten(transform(Participants, p -> transform(coalesce(p.Sessions, array()), s -> transform(coalesce(s.Segments, array()),"
    " g -> struct(g.SegmentType AS t, unix_millis(g.SegmentStart) AS start, unix_millis(g.SegmentEnd) AS end,"
    " g.SegmentDurationMs AS duration, g.Sentiment AS sentiment))))))"
)
EMITS = (
    "flatten(flatten(transform(Participants, p -> transform(coalesce(p.Sessions, array()), s -> transform(coalesce(s.Metrics, array()),"
    " m -> struct(m.Name AS name, m.Value AS value, unix_millis(m.EmitDate) AS at))))))"
)
REGIONS = "transform(Participants, p -> p.ParticipantRegion)"


def expected_row(c: dict) -> tuple:
    parts = c["Participants"] or []
    sessions = [s for p in parts for s in p["Sessions"] or []]
    return (
        ms(c["ConversationStart"]),
        ms(c["ConversationEnd"]),
        [(g["SegmentType"], ms(g["SegmentStart"]), ms(g["SegmentEnd"]), g.get("SegmentDurationMs"),
          g.get("Sentiment")) for s in sessions for g in s["Segments"] or []],
        [(m["Name"], m["Value"], ms(m["EmitDate"])) for s in sessions for m in s["Metrics"] or []],
        [p.get("ParticipantRegion") for p in parts],
    )


def target_rows(spark, table: str) -> dict[str, tuple]:
    df = spark.read.format("delta").load(table).select(
        "ConversationId", F.unix_millis("ConversationStart").alias("cs"),
        F.unix_millis("ConversationEnd").alias("ce"), F.expr(SEGMENTS).alias("seg"), F.expr(EMITS).alias("emit"),
        F.expr(REGIONS).alias("reg"),
    )
    return {
        r["ConversationId"]: (r["cs"], r["ce"], [tuple(x) for x in r["seg"]], [tuple(x) for x in r["emit"]],
                              list(r["reg"]))
        for r in df.collect()
    }


def field_type(schema: T.StructType, *path: str) -> T.DataType:
    dtype: T.DataType = schema
    for name in path:
        while isinstance(dtype, T.ArrayType):
            dtype = dtype.elementType
        assert isinstance(dtype, T.StructType)
        dtype = dtype[name].dataType
    return dtype


def test_v1_v2_iso_and_millis_files_land_every_value_as_utc_timestamps(spark, make_config):
    """Run 1: v1 with timestamp-millis. Run 2: one batch mixing v1 and v2 files with ISO-8601
    strings (v2 adds fields nested three arrays deep). Every value arrives; v1 rows are null where
    only v2 has a field; every instant, nested too, is a UTC timestamp."""
    seed = 21
    with Emulator(conversations=9, pages=3, files_per_page=1, records_per_file=2, seed=seed,
                  timestamps="millis") as emu:
        config = make_config(emu, max_pages=1)
        expected: dict[str, tuple] = {}

        def capture(page: int) -> None:
            for spec in emu.pages()[page].files:
                emu.file_path(spec.name)  # generate now, with the current factory
                for c in emu.factory.conversations(spec):
                    expected[c["ConversationId"]] = expected_row(c)

        capture(0)
        first = run_ingest(spark, config, emu_credentials(emu))
        assert first.rows == 3

        emu.factory = ConversationFactory(seed, schema_version=1, timestamps="iso")
        capture(1)  # page 1 is v1 ...
        emu.factory = ConversationFactory(seed, schema_version=2, timestamps="iso")
        capture(2)  # ... page 2 is v2: one batch with both writer schemas
        second = run_ingest(spark, make_config(emu), emu_credentials(emu))
        assert (second.batches, second.rows) == (1, 6)

        got = target_rows(spark, config.table)
        assert got == expected
        # v1 conversations have null where only v2 carries a field; v2 ones carry the values.
        v1_ids = {c["ConversationId"] for p in (0, 1) for s in emu.pages()[p].files
                  for c in ConversationFactory(seed, 1).conversations(s)}
        assert all(seg[3] is None and seg[4] is None for i in v1_ids for seg in got[i][2])
        assert all(seg[4] is not None for i in set(got) - v1_ids for seg in got[i][2])
        assert len(v1_ids) == 6 and len(got) == 9

        schema = spark.read.format("delta").load(config.table).schema
        for path in (("ConversationStart",), ("Participants", "Sessions", "Segments", "SegmentStart"),
                     ("Participants", "Sessions", "Metrics", "EmitDate")):
            assert field_type(schema, *path) == T.TimestampType(), path
        assert field_type(schema, "Participants", "Sessions", "Segments", "Sentiment") == T.DoubleType()


def _conversation_file(tmp_path, name: str, purpose_type: object, purpose: object) -> str:
    """A conversation file whose ``Participants[].Purpose`` has the given type."""
    schema = load_schema(1)
    conv = schema["fields"][0]["type"][1]["items"]
    conv["fields"] = [f for f in conv["fields"] if f["name"] in ("ConversationId", "Participants")]
    participants = next(f for f in conv["fields"] if f["name"] == "Participants")
    part = participants["type"][1]["items"]
    part["fields"] = [{"name": "Purpose", "type": ["null", purpose_type], "default": None}]
    schema["fields"] = schema["fields"][:1]
    write_avro(tmp_path / name, schema, [{"Entities": [
        {"ConversationId": f"conflict-{name}", "Participants": [{"Purpose": purpose}]}]}])
    return name


def test_type_changes_fail_the_batch_naming_field_and_types_and_commit_nothing(spark, make_config, tmp_path):
    with Emulator(conversations=4, pages=2, files_per_page=1, records_per_file=1, seed=4) as emu, \
            FileServer(tmp_path) as files:
        config = make_config(emu, max_pages=1)
        run_ingest(spark, config, emu_credentials(emu))
        before = read_position(spark, config.watermark_table, config.source)
        versions = spark.sql(f"DESCRIBE HISTORY delta.`{config.table}`").count()

        # Against the table: Purpose is a string there, a long in the new file.
        add_files(emu, files, {1: [("conversations_detail_without_attributes_901",
                                    _conversation_file(tmp_path, "a.avro", "long", 7))]}, replace=True)
        with pytest.raises(SchemaConflictError) as err:
            run_ingest(spark, make_config(emu), emu_credentials(emu))
        assert str(err.value).endswith(
            "field Participants[].Purpose is bigint in the batch but string in the table")

        # Inside one batch: two files disagree (string vs boolean).
        add_files(emu, files, {1: [("conversations_detail_without_attributes_902",
                                    _conversation_file(tmp_path, "b.avro", "boolean", True))]})
        with pytest.raises(SchemaConflictError) as err:
            run_ingest(spark, make_config(emu), emu_credentials(emu))
        assert "field Entities[].Participants[].Purpose has incompatible types in the batch's files:" \
            " string vs boolean" in str(err.value)
        assert "conversations_detail_without_attributes_902" in str(err.value)

        assert read_position(spark, config.watermark_table, config.source) == before
        assert spark.sql(f"DESCRIBE HISTORY delta.`{config.table}`").count() == versions
        ids = {r[0] for r in spark.read.format("delta").load(config.table).select("ConversationId").collect()}
        assert ids == {c["ConversationId"] for s in emu.pages()[0].files for c in emu.factory.conversations(s)}
