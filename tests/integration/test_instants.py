"""ISO-8601 instants, nested too, become the same UTC timestamps in any session: the fast cast
(UTC session, ANSI on) and the exact per-field parser (any other session) agree, and a value that
is not an instant fails the batch naming the field and the value either way."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from pyspark.sql import functions as F

from repo361_ingest.emulator import Emulator
from repo361_ingest.emulator.schema import load_schema
from repo361_ingest.read import ReadError
from repo361_ingest.run import run_ingest
from repo361_ingest.sink import table_exists
from repo361_ingest.transform import cast_is_exact
from repo361_ingest.watermark import read_position

from avro_files import FileServer, add_files, ms, write_avro
from helpers import emu_credentials

pytestmark = pytest.mark.spark

SEGMENT_STARTS = "flatten(flatten(transform(Participants, p -> transform(p.Sessions, s -> transform(s.Segments, g -> unix_millis(g.SegmentStart))))))"


def instants_file(path, cid: str, start: str, segment_starts: list[str]) -> None:
    """The export's v1 schema cut down to ConversationStart and Participants[].Sessions[].Segments[].SegmentStart."""
    schema = load_schema(1)
    schema["fields"] = schema["fields"][:1]
    conv = schema["fields"][0]["type"][1]["items"]
    conv["fields"] = [f for f in conv["fields"] if f["name"] in ("ConversationId", "ConversationStart", "Participants")]
    part = next(f for f in conv["fields"] if f["name"] == "Participants")["type"][1]["items"]
    part["fields"] = [f for f in part["fields"] if f["name"] == "Sessions"]
    session = part["fields"][0]["type"][1]["items"]
    session["fields"] = [f for f in session["fields"] if f["name"] == "Segments"]
    segment = session["fields"][0]["type"][1]["items"]
    segment["fields"] = [f for f in segment["fields"] if f["name"] == "SegmentStart"]
    record = {"ConversationId": cid, "ConversationStart": start, "Participants": [
        {"Sessions": [{"Segments": [{"SegmentStart": s} for s in segment_starts]}]}]}
    write_avro(path, schema, [{"Entities": [record]}])


@contextlib.contextmanager
def session_conf(spark, **settings: str) -> Iterator[None]:
    keys = {"zone": "spark.sql.session.timeZone", "ansi": "spark.sql.ansi.enabled"}
    before = {keys[k]: spark.conf.get(keys[k]) for k in settings}
    try:
        for k, v in settings.items():
            spark.conf.set(keys[k], v)
        yield
    finally:
        for k, v in before.items():
            spark.conf.set(k, v)


@pytest.mark.parametrize(("zone", "ansi", "fast"), [
    ("UTC", "true", True),
    ("America/New_York", "true", False),  # zone-less strings would be read in New York by a cast
    ("UTC", "false", False),  # a cast would turn a bad value into a silent null
])
def test_instants_are_utc_and_bad_ones_are_named_in_any_session(spark, make_config, tmp_path, zone, ansi, fast):
    with session_conf(spark, zone=zone, ansi=ansi), \
            Emulator(conversations=1, pages=2, files_per_page=1, records_per_file=1, seed=5) as emu, \
            FileServer(tmp_path) as files:
        assert cast_is_exact(spark) is fast
        instants_file(tmp_path / "good.avro", "good-1", "2024-03-31T01:30:00.250",
                      ["2024-03-31T01:30:00.250+02:00", " 2024-03-31 02:00:00Z ", "2024-03-31", "2024-03"])
        instants_file(tmp_path / "bad.avro", "bad-1", "2024-03-31T01:30:00Z",
                      ["2024-03-31T01:30:00Z", "half past ten"])
        add_files(emu, files, {0: [("conversations_good_1", "good.avro")],
                               1: [("conversations_bad_2", "bad.avro")]}, replace=True)
        config = make_config(emu, batch_max_pages=1)

        with pytest.raises(ReadError) as err:
            run_ingest(spark, config, emu_credentials(emu))
        assert str(err.value) == ("reading file(s) 'conversations_bad_2' failed: field"
                                  " Participants.Sessions.Segments.SegmentStart holds {half past ten},"
                                  " not an ISO-8601 instant")

        # Page 1 (the good file) was committed before page 2 failed; page 2 left nothing behind.
        assert read_position(spark, config.watermark_table, config.source).page_seq == 1
        row = spark.read.format("delta").load(config.table).select(
            "ConversationId", F.unix_millis("ConversationStart").alias("start"), F.expr(SEGMENT_STARTS).alias("seg"),
        ).collect()
        assert [(r["ConversationId"], r["start"], list(r["seg"])) for r in row] == [(
            "good-1", ms("2024-03-31T01:30:00.250Z"),
            [ms("2024-03-30T23:30:00.250Z"), ms("2024-03-31T02:00:00Z"), ms("2024-03-31T00:00:00Z"),
             ms("2024-03-01T00:00:00Z")],
        )]


def test_a_bad_top_level_instant_commits_nothing(spark, make_config, tmp_path):
    with Emulator(conversations=1, pages=1, files_per_page=1, records_per_file=1, seed=6) as emu, \
            FileServer(tmp_path) as files:
        instants_file(tmp_path / "bad.avro", "bad-2", "2024-02-30T10:00:00Z", [])
        add_files(emu, files, {0: [("conversations_bad_3", "bad.avro")]})
        config = make_config(emu)
        with pytest.raises(ReadError) as err:
            run_ingest(spark, config, emu_credentials(emu))
        assert str(err.value).endswith("failed: field ConversationStart holds {2024-02-30T10:00:00Z},"
                                       " not an ISO-8601 instant")
        assert not table_exists(spark, config.table)
        assert read_position(spark, config.watermark_table, config.source).page_seq == 0


@pytest.mark.skipif(not __import__("pyspark").__version__.startswith("4"), reason="ANSI mode is off by default before Spark 4.0")
def test_a_default_session_parses_instants_with_the_cast(spark):
    # The session as the job builds it (UTC, ANSI at Spark 4.0's default): the fast way applies.
    # (Guards against reading a conf with a default argument, which answers that default.)
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert cast_is_exact(spark) is True
