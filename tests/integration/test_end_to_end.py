"""The whole job against the emulator over real HTTP, with real Spark, spark-avro and Delta."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from repo361_ingest.emulator import Emulator
from repo361_ingest.run import run_ingest
from repo361_ingest.watermark import history, read_position

from helpers import emu_credentials

pytestmark = pytest.mark.spark


def target_ids(spark, config) -> list[str]:
    rows = spark.read.format("delta").load(config.table).select("ConversationId").collect()
    return [r[0] for r in rows]


def test_full_run_ingests_exactly_the_emulators_conversations(spark, make_config):
    with Emulator(conversations=60, pages=3, files_per_page=2, records_per_file=2, seed=11) as emu:
        config = make_config(emu)
        summary = run_ingest(spark, config, emu_credentials(emu))
        ids = target_ids(spark, config)
        assert sorted(ids) == sorted(emu.conversation_ids())
        assert len(ids) == 60
        assert summary.outcome == "success"
        assert (summary.files, summary.rows) == (6, 60)

        # Nested values arrive unchanged: participants -> sessions -> segments, per conversation.
        expected = {
            c["ConversationId"]: (
                c["OriginatingDirection"],
                [p["Purpose"] for p in c["Participants"] or []],
                [s["SegmentType"] for p in c["Participants"] or [] for se in p["Sessions"] or [] for s in se["Segments"] or []],
            )
            for c in emu.conversations()
        }
        got = {
            r["ConversationId"]: (r["OriginatingDirection"], list(r["purposes"] or []), list(r["segtypes"] or []))
            for r in spark.read.format("delta").load(config.table).select(
                "ConversationId",
                "OriginatingDirection",
                F.expr("transform(Participants, p -> p.Purpose)").alias("purposes"),
                F.expr("flatten(flatten(transform(Participants, p -> transform(p.Sessions, s -> transform(s.Segments, g -> g.SegmentType)))))").alias("segtypes"),
            ).collect()
        }
        assert got == expected

        # Ingestion columns: the API's file name and its page for every row.
        by_file = {
            (r["_source_file"], r["_page_seq"])
            for r in spark.read.format("delta").load(config.table).select("_source_file", "_page_seq").distinct().collect()
        }
        assert by_file == {(f.name, f.page + 1) for f in emu.files()}


def test_second_run_without_new_data_adds_nothing_and_keeps_the_watermark(spark, make_config):
    with Emulator(conversations=20, pages=2, files_per_page=1, records_per_file=2, seed=3) as emu:
        config = make_config(emu)
        run_ingest(spark, config, emu_credentials(emu))
        before = read_position(spark, config.watermark_table, config.source)
        again = run_ingest(spark, config, emu_credentials(emu))
        assert again.outcome == "no_new_data"
        assert (again.batches, again.rows) == (0, 0)
        assert sorted(target_ids(spark, config)) == sorted(emu.conversation_ids())
        assert read_position(spark, config.watermark_table, config.source) == before
        assert before.token is not None and before.page_seq == 2


@pytest.mark.parametrize("end_style", ["same_token", "null_token", "empty_page"])
def test_pages_added_between_runs_are_the_only_new_rows(spark, make_config, end_style):
    with Emulator(conversations=20, pages=2, files_per_page=1, records_per_file=2, seed=5, end_style=end_style) as emu:
        config = make_config(emu)
        run_ingest(spark, config, emu_credentials(emu))
        first_ids = set(emu.conversation_ids())
        assert sorted(target_ids(spark, config)) == sorted(first_ids)
        position = read_position(spark, config.watermark_table, config.source)
        assert position.token, "the watermark never stores a null or empty token"

        emu.add_pages(2, conversations=12)
        summary = run_ingest(spark, config, emu_credentials(emu))
        new_ids = set(emu.conversation_ids()) - first_ids
        assert len(new_ids) == 12
        rows = spark.read.format("delta").load(config.table).select("ConversationId", "_run_id").collect()
        assert sorted(r[0] for r in rows) == sorted(first_ids | new_ids)  # no duplicates either
        assert {r[0] for r in rows if r[1] == summary.run_id} == new_ids
        assert read_position(spark, config.watermark_table, config.source).token


def test_null_token_last_page_leaves_last_non_null_token(spark, make_config):
    with Emulator(conversations=12, pages=3, files_per_page=1, records_per_file=1, seed=9, end_style="null_token") as emu:
        config = make_config(emu)
        run_ingest(spark, config, emu_credentials(emu))
        rows = history(spark, config.watermark_table, config.source)
        assert all(r.continuation_token for r in rows)
        head = rows[0]
        # The last page answered null: the position is the token that produced that page, with
        # its file marked as taken, so the next run asks for it again and skips it.
        last_page_file = emu.files()[-1].name
        assert head.page_seq == 3 and head.skip_files == (last_page_file,)
        again = run_ingest(spark, config, emu_credentials(emu))
        assert again.rows == 0
        assert len(target_ids(spark, config)) == 12


def test_max_pages_stops_where_it_says(spark, make_config):
    with Emulator(conversations=40, pages=4, files_per_page=1, records_per_file=2, seed=21) as emu:
        config = make_config(emu, max_pages=2, batch_max_pages=1)
        summary = run_ingest(spark, config, emu_credentials(emu))
        assert (summary.pages, summary.batches, summary.end_page_seq) == (2, 2, 2)
        expected = {
            c["ConversationId"] for f in emu.files() if f.page < 2 for c in emu.factory.conversations(f)
        }
        assert set(target_ids(spark, config)) == expected and len(expected) == 20
        assert read_position(spark, config.watermark_table, config.source).page_seq == 2
        rest = run_ingest(spark, make_config_without_limit(config), emu_credentials(emu))
        assert rest.rows == 20
        assert sorted(target_ids(spark, config)) == sorted(emu.conversation_ids())


def make_config_without_limit(config):
    return config.model_copy(update={"max_pages": None})
