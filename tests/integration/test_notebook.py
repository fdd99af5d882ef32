"""The Databricks notebook, top to bottom, with a small stand-in for dbutils and display.

The notebook is a Databricks source-format .py file: cells are plain Python separated by
``# COMMAND ----------`` and magics (``%pip``, ``%md``) are ``# MAGIC`` comments, so running the
file as Python runs every code cell in order. Widgets come from job parameters here (as in a
Databricks job), the credentials from the stand-in secret scope.
"""

from __future__ import annotations

import datetime as dt
import runpy
from pathlib import Path

import pytest

from repo361_ingest.emulator import Emulator

pytestmark = pytest.mark.spark

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "ingest_repo361.py"


class _Widgets:
    def __init__(self, parameters: dict[str, str]) -> None:
        self._parameters = parameters
        self.declared: dict[str, str] = {}

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.declared[name] = default

    def get(self, name: str) -> str:
        if name not in self.declared:
            raise ValueError(f"widget {name!r} was not declared")  # as Databricks does
        return self._parameters.get(name, self.declared[name])


class _Secrets:
    def __init__(self, scopes: dict[str, dict[str, str]]) -> None:
        self._scopes = scopes
        self.requested: list[tuple[str, str]] = []

    def get(self, scope: str, key: str) -> str:
        self.requested.append((scope, key))
        return self._scopes[scope][key]


class FakeDbutils:
    """Only what the notebook uses: widgets.text/get and secrets.get."""

    def __init__(self, parameters: dict[str, str], scopes: dict[str, dict[str, str]]) -> None:
        self.widgets = _Widgets(parameters)
        self.secrets = _Secrets(scopes)


def test_notebook_runs_top_to_bottom_and_shows_summary_and_chart(spark, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    shown = []
    with Emulator(conversations=16, pages=2, files_per_page=2, records_per_file=2, seed=41) as emu:
        parameters = {
            "table": str(tmp_path / "conversations"),
            "watermark_table": str(tmp_path / "watermark"),
            "staging": str(tmp_path / "staging"),
            "secret_scope": "repo361-test",
            "api_base_url": emu.api_base_url,
            "token_url": emu.token_url,
            "max_pages": "",
        }
        dbutils = FakeDbutils(
            parameters,
            {"repo361-test": {"client-id": emu.client_id, "client-secret": emu.client_secret}},
        )
        scope = runpy.run_path(
            str(NOTEBOOK), init_globals={"spark": spark, "dbutils": dbutils, "display": shown.append}
        )
        expected_ids = emu.conversation_ids()
        per_key: dict[tuple[dt.date, str], set[str]] = {}
        for c in emu.conversations():
            day = dt.datetime.fromisoformat(c["ConversationStart"].replace("Z", "+00:00")).date()
            for p in c["Participants"] or []:
                for s in p["Sessions"] or []:
                    per_key.setdefault((day, s["MediaType"]), set()).add(c["ConversationId"])

    assert set(dbutils.widgets.declared) >= {"table", "watermark_table", "staging", "secret_scope",
                                             "secret_client_id_key", "secret_client_secret_key", "max_pages"}
    assert dbutils.secrets.requested == [("repo361-test", "client-id"), ("repo361-test", "client-secret")]

    summary = scope["summary"]
    assert (summary["outcome"], summary["files"], summary["rows"]) == ("success", 4, 16)
    target = spark.read.format("delta").load(parameters["table"]).select("ConversationId").collect()
    assert sorted(r[0] for r in target) == sorted(expected_ids)

    # display() got the summary row, then the per-day, per-media-type counts.
    summary_frame, per_day = shown
    assert summary_frame.collect()[0]["rows"] == "16"
    got = {(r["day"], r["media_type"]): r["conversations"] for r in per_day.collect()}
    assert got == {key: len(ids) for key, ids in per_key.items()}
    assert len(per_key) > 1  # several days or media types: the grouping is really tested
