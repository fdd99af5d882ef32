"""Odd files end to end: empty files and records, null Entities, odd file and field names, many
small files in one page, and files spark-avro cannot decode."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from repo361_ingest.emulator import Emulator
from repo361_ingest.read import ReadError
from repo361_ingest.run import run_ingest
from repo361_ingest.sink import table_exists
from repo361_ingest.watermark import read_position

from avro_files import FileServer, add_files, ms, write_avro
from helpers import emu_credentials

pytestmark = pytest.mark.spark

NS = "com.repo361.genesys"
ODD_NAME = "conversations odd ü;(x)=1 &?#%2F..\\003"


def odd_schema() -> dict:
    """Same record names as the export (so it merges with it), field names Delta cannot store."""
    item = {"type": "record", "name": "OddItem", "namespace": NS,
            "fields": [{"name": "k=v", "type": "int"}, {"name": "Plain", "type": "string"}]}
    conv = {"type": "record", "name": "AnalyticsConversationWithoutAttributes", "namespace": NS, "fields": [
        {"name": "ConversationId", "type": "string"},
        {"name": "ConversationStart", "type": ["null", "string"]},
        {"name": "a b", "type": ["null", "string"]},
        {"name": "x,y;{z}(w)=v", "type": "long"},
        {"name": "Foo", "type": "int"},
        {"name": "foo", "type": "int"},
        {"name": "Odd Items", "type": {"type": "array", "items": item}},
    ]}
    return {"type": "record", "name": "ConversationDetailExportRecord", "namespace": NS,
            "fields": [{"name": "Entities", "type": ["null", {"type": "array", "items": conv}]}]}


def odd_conversation(cid: str, start: str) -> dict:
    return {"ConversationId": cid, "ConversationStart": start, "a b": "spaced", "x,y;{z}(w)=v": 42,
            "Foo": 1, "foo": 2, "Odd Items": [{"k=v": 7, "Plain": "p"}, {"k=v": 8, "Plain": "q"}]}


def test_odd_files_and_names_land_exactly_their_rows(spark, make_config, tmp_path):
    # 24 files in one page; file 0 has no records, record 1 of file 1 has an empty Entities.
    with Emulator(conversations=40, pages=1, files_per_page=24, records_per_file=2, seed=9,
                  empty_files={(0, 0)}, empty_records={(0, 1, 1)}) as emu, FileServer(tmp_path) as files:
        write_avro(tmp_path / "odd.avro", odd_schema(), [
            {"Entities": None},
            {"Entities": []},
            {"Entities": [odd_conversation("odd-1", "2024-03-31T01:30:00.250+02:00")]},
        ])
        write_avro(tmp_path / "zero.avro", odd_schema(), [])
        add_files(emu, files, {0: [(ODD_NAME, "odd.avro"), ("conversations_zero_5", "zero.avro")]})
        config = make_config(emu)
        summary = run_ingest(spark, config, emu_credentials(emu))

        assert (summary.files, summary.rows) == (26, 41)
        df = spark.read.format("delta").load(config.table)
        assert sorted(r[0] for r in df.select("ConversationId").collect()) == sorted(emu.conversation_ids() | {"odd-1"})

        # Renamed columns (Avro and Delta names), the source name as _source_file, UTC instant.
        odd = df.where("ConversationId = 'odd-1'").select(
            "a_b", "x_y__z__w__v", "Foo", "foo__2", F.expr("transform(Odd_Items, i -> struct(i.k_v, i.Plain))").alias("items"),
            F.unix_millis("ConversationStart").alias("start"), "_source_file", "_page_seq",
        ).collect()
        assert [tuple(r[:4]) for r in odd] == [("spaced", 42, 1, 2)]
        assert [tuple(i) for i in odd[0]["items"]] == [(7, "p"), (8, "q")]
        assert (odd[0]["start"], odd[0]["_source_file"], odd[0]["_page_seq"]) == (
            ms("2024-03-30T23:30:00.250Z"), ODD_NAME, 1)
        # Emulator rows have nulls in the odd columns; the empty file contributes no row.
        others = df.where("ConversationId != 'odd-1'").select("a_b", "Foo", "foo__2", "Odd_Items").distinct().collect()
        assert [tuple(r) for r in others] == [(None, None, None, None)]
        assert {r[0] for r in df.select("_source_file").distinct().collect()} == (
            {f.name for f in emu.files() if f.conversation_count} | {ODD_NAME})


def test_undecodable_data_and_bad_instants_fail_the_batch_naming_the_file(spark, make_config, tmp_path):
    schema = odd_schema()
    with Emulator(conversations=2, pages=1, files_per_page=1, records_per_file=1, seed=2) as emu, \
            FileServer(tmp_path) as files:
        # A valid container (blocks and sync markers intact) whose record data is not: a string
        # length that decodes as negative. The download check passes; spark-avro cannot decode it.
        path = write_avro(tmp_path / "bad.avro", schema, [{"Entities": [odd_conversation("MARKERMARKER", None)]}])
        data = bytearray(path.read_bytes())
        at = data.index(b"MARKERMARKER")
        assert data[at - 1] == 24  # zigzag length of 12
        data[at - 1] = 0x7F  # -64
        path.write_bytes(bytes(data))
        add_files(emu, files, {0: [("conversations_broken_007", "bad.avro")]})
        config = make_config(emu)
        with pytest.raises(ReadError) as err:
            run_ingest(spark, config, emu_credentials(emu))
        message = str(err.value)
        assert message.startswith("reading file(s) 'conversations_broken_007' failed: ")
        assert str(tmp_path) not in message and "staging" not in message

        write_avro(tmp_path / "late.avro", schema, [{"Entities": [odd_conversation("late-1", "half past ten")]}])
        add_files(emu, files, {0: [("conversations_late_008", "late.avro")]})
        with pytest.raises(ReadError) as err:
            run_ingest(spark, config, emu_credentials(emu))
        assert str(err.value).endswith(
            "failed: field ConversationStart holds {half past ten}, not an ISO-8601 instant")

        assert not table_exists(spark, config.table)
        assert read_position(spark, config.watermark_table, config.source).page_seq == 0
