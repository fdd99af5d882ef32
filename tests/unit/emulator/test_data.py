"""Generated files: valid Avro, read back exactly, deterministic, plausible values."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import fastavro
import pytest

from repo361_ingest.emulator import Emulator
from repo361_ingest.emulator.data import ConversationFactory
from repo361_ingest.emulator.encoder import zigzag_varint
from repo361_ingest.emulator.layout import plan_page, split_evenly


def _read(path: Path) -> list[dict]:
    with open(path, "rb") as fo:
        return list(fastavro.reader(fo))


@pytest.mark.parametrize("version,timestamps,codec", [
    (1, "iso", "null"), (1, "millis", "null"), (2, "iso", "deflate"), (2, "millis", "null")])
def test_files_read_back_to_exactly_the_generated_values(
        version: int, timestamps: str, codec: str) -> None:
    emu = Emulator(conversations=150, pages=2, files_per_page=2, records_per_file=3, seed=3,
                   schema_version=version, timestamps=timestamps, codec=codec)
    try:
        read = []
        for spec in emu.files():
            records = _read(emu.file_path(spec.name))
            assert [r["PageNumber"] for r in records] == [1, 2, 3]
            read += [c for r in records for c in r["Entities"]]
        expected = list(emu.conversations())
        assert len(read) == 150
        assert read == expected
        assert {c["ConversationId"] for c in read} == emu.conversation_ids()
        start = read[0]["ConversationStart"]
        assert isinstance(start, datetime if timestamps == "millis" else str)
        if version == 2:
            assert "Sentiment" in read[0]["Participants"][0]["Sessions"][0]["Segments"][0]
    finally:
        emu.stop()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    spec = plan_page(0, 0, 40, 1, 2).files[0]
    paths = []
    for i, seed in enumerate((5, 5, 6)):
        path = tmp_path / f"{i}.avro"
        ConversationFactory(seed).write_file(spec, path)
        paths.append(path.read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_values_are_plausible() -> None:
    emu = Emulator(conversations=400, pages=1, files_per_page=1, records_per_file=1, seed=9)
    convs = list(emu.conversations())
    media = {s["MediaType"] for c in convs for p in c["Participants"] for s in p["Sessions"]}
    purposes = {p["Purpose"] for c in convs for p in c["Participants"]}
    assert media == {"voice", "callback", "chat", "email", "message"}
    assert purposes == {"customer", "ivr", "acd", "agent"}
    assert {c["OriginatingDirection"] for c in convs} == {"inbound", "outbound"}
    assert any(not n.isascii() for c in convs for p in c["Participants"]
               if (n := p["ParticipantName"]))
    metric_names = {m["Name"] for c in convs for p in c["Participants"] for s in p["Sessions"]
                    for m in s["Metrics"] or []}
    assert {"tAlert", "tTalk", "tHandle", "nConnected", "tAcw"} <= metric_names
    for c in convs:
        for p in c["Participants"]:
            for s in p["Sessions"]:
                segs = s["Segments"]
                # ISO strings in one format sort like the instants they encode
                for a, b in zip(segs, segs[1:]):
                    assert a["SegmentStart"] <= a["SegmentEnd"] <= b["SegmentStart"]
                assert segs[0]["SegmentStart"] >= c["ConversationStart"]
        if c["ConversationEnd"] is not None:
            assert c["ConversationEnd"] > c["ConversationStart"]
    assert any(c["ConversationEnd"] is None for c in convs)  # ongoing ones exist
    starts = [c["ConversationStart"] for c in convs]
    assert starts == sorted(starts)
    assert convs[0]["ConversationStart"].startswith("2024-01-01T10:00:")
    assert convs[0]["Evaluations"] is None  # the long tail stays null


def test_empty_files_and_empty_records() -> None:
    emu = Emulator(conversations=12, pages=1, files_per_page=3, records_per_file=2, seed=1,
                   empty_files={(0, 1)}, empty_records={(0, 0, 0)})
    try:
        f0, f1, f2 = emu.files()
        assert _read(emu.file_path(f1.name)) == []
        r0 = _read(emu.file_path(f0.name))
        assert [len(r["Entities"]) for r in r0] == [0, 6]
        assert [len(r["Entities"]) for r in _read(emu.file_path(f2.name))] == [3, 3]
        assert len(emu.conversation_ids()) == 12
    finally:
        emu.stop()


def test_layout_spreads_evenly() -> None:
    assert split_evenly(10, 4) == [3, 3, 2, 2]
    page = plan_page(2, 100, 7, 2, 2)
    assert [f.name for f in page.files] == ["conversations_detail_without_attributes_005",
                                            "conversations_detail_without_attributes_006"]
    assert [f.records for f in page.files] == [((100, 2), (102, 2)), ((104, 2), (106, 1))]


def test_zigzag_matches_fastavro() -> None:
    for n in (0, 1, -1, 63, 64, 1_704_103_200_000):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, "long", n)
        assert zigzag_varint(n) == buf.getvalue()
