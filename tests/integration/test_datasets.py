"""Files of other datasets on the same pages: routed to their own tables, exactly once across a
failure between the tables' commits, and never dropped silently."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from repo361_ingest.datasets import UnknownDatasetError
from repo361_ingest.emulator import Emulator
from repo361_ingest.run import run_ingest
from repo361_ingest.sink import table_exists
from repo361_ingest.watermark import read_position

from avro_files import FileServer, add_files, ms, write_avro
from helpers import emu_credentials

pytestmark = pytest.mark.spark

USER = {"type": "record", "name": "User", "namespace": "t", "fields": [
    {"name": "Id", "type": "string"}, {"name": "Name", "type": "string"},
    {"name": "ModifiedDate", "type": ["null", "string"]}]}
QUEUE = {"type": "record", "name": "Queue", "namespace": "t", "fields": [
    {"name": "Id", "type": "string"}, {"name": "MemberCount", "type": "int"}]}
QUEUES_PAGE = {"type": "record", "name": "QueuesPage", "namespace": "t", "fields": [
    {"name": "Entities", "type": ["null", {"type": "array", "items": QUEUE}]}, {"name": "Total", "type": "long"}]}


def rows(spark, table: str, *cols) -> set[tuple]:
    return {tuple(r) for r in spark.read.format("delta").load(table).select(*cols).collect()}


def test_other_datasets_get_their_tables_exactly_once(spark, make_config, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    write_avro(served / "u.avro", USER, [
        {"Id": "u1", "Name": "Zoë", "ModifiedDate": "2024-05-01T08:00:00Z"},
        {"Id": "u2", "Name": "Ahmed", "ModifiedDate": None}])
    write_avro(served / "q1.avro", QUEUES_PAGE, [{"Entities": [{"Id": "q1", "MemberCount": 3}], "Total": 1},
                                                 {"Entities": None, "Total": 0}])
    write_avro(served / "q2.avro", QUEUES_PAGE, [{"Entities": [{"Id": "q2", "MemberCount": 0},
                                                              {"Id": "q3", "MemberCount": 12}], "Total": 2}])
    users_table = str(tmp_path / "users_tbl")
    with Emulator(conversations=6, pages=2, files_per_page=1, records_per_file=1, seed=13) as emu, \
            FileServer(served) as files:
        add_files(emu, files, {0: [("users_001", "u.avro"), ("queues_001", "q1.avro")],
                               1: [("queues_002", "q2.avro")]})
        routes = {"dataset_tables": "{users: " + users_table + "}"}

        # The conversation table's commit (written last) fails after the other tables committed.
        failing = make_config(emu, partition_by="[NoSuchColumn]", **routes)
        with pytest.raises(Exception, match="NoSuchColumn"):
            run_ingest(spark, failing, emu_credentials(emu))
        assert read_position(spark, failing.watermark_table, failing.source).page_seq == 0
        assert not table_exists(spark, failing.table)

        # The rerun commits the conversations; the other tables' writes of this batch are skipped
        # (same txnAppId per table, same txnVersion), so their rows are there exactly once.
        config = make_config(emu, **routes)
        summary = run_ingest(spark, config, emu_credentials(emu))
        assert summary.outcome == "success" and summary.rows == 6
        assert read_position(spark, config.watermark_table, config.source).page_seq == 2

        assert sorted(r[0] for r in spark.read.format("delta").load(config.table).select("ConversationId").collect()) \
            == sorted(emu.conversation_ids())
        user_rows = spark.read.format("delta").load(users_table).select(
            "Id", "Name", F.unix_millis("ModifiedDate"), "_source_file", "_page_seq").collect()
        assert sorted(tuple(r) for r in user_rows) == [
            ("u1", "Zoë", ms("2024-05-01T08:00:00Z"), "users_001", 1),
            ("u2", "Ahmed", None, "users_001", 1),
        ]
        assert rows(spark, config.table + "_queues", "Id", "MemberCount", "_source_file", "_page_seq") == {
            ("q1", 3, "queues_001", 1), ("q2", 0, "queues_002", 2), ("q3", 12, "queues_002", 2)}
        assert spark.read.format("delta").load(config.table + "_queues").count() == 3
        assert "ConversationId" not in spark.read.format("delta").load(users_table).columns

        # unknown_datasets=fail: the batch fails naming the datasets; nothing is committed.
        strict = make_config(emu, unknown_datasets="fail", table=str(tmp_path / "strict"),
                             watermark_table=str(tmp_path / "strict_wm"))
        with pytest.raises(UnknownDatasetError) as err:
            run_ingest(spark, strict, emu_credentials(emu))
        assert "'queues' (queues_001, queues_002); 'users' (users_001)" in str(err.value)
        assert not table_exists(spark, strict.table) and not table_exists(spark, strict.table + "_queues")
