"""databricks.yml: the job resource validates against the bundle's own models, and what it runs exists.

No JSON schema of the bundle format ships in any package reachable here (the `databricks` CLI,
which holds it, is not on PyPI). ``databricks-bundles`` (PyPI, the bundle's Python support) has
typed models of every resource generated from that schema; its ``Job.from_dict`` rejects unknown
or misspelt fields, so the job resource is validated with it. The top-level keys are checked
structurally, and the task's parameters are parsed by the real command-line parser and config.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from repo361_ingest.cli import build_parser
from repo361_ingest.config import load_config

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = yaml.safe_load((ROOT / "databricks.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _resolve(value, variables: dict[str, str], target: str):
    """Substitute ${var.x} and ${bundle.target} the way `databricks bundle validate` does."""
    if isinstance(value, str):
        value = value.replace("${bundle.target}", target)
        return re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: variables[m.group(1)], value)
    if isinstance(value, list):
        return [_resolve(v, variables, target) for v in value]
    if isinstance(value, dict):
        return {k: _resolve(v, variables, target) for k, v in value.items()}
    return value


def _job() -> dict:
    variables = {name: spec["default"] for name, spec in BUNDLE["variables"].items()}
    return _resolve(BUNDLE["resources"]["jobs"]["repo361_ingest"], variables, "dev")


def test_top_level_keys_and_wheel_artifact():
    assert set(BUNDLE) <= {"bundle", "variables", "artifacts", "resources", "targets", "include", "workspace"}
    assert BUNDLE["bundle"]["name"] == "repo361-ingest"
    (artifact,) = BUNDLE["artifacts"].values()
    assert artifact["type"] == "whl" and artifact["path"] == "."
    assert artifact["build"].split()[-4:] == ["--no-deps", "-w", "dist", "."]
    assert {t for t, spec in BUNDLE["targets"].items() if spec.get("default")} == {"dev"}
    # Every ${var.x} used is declared with a default.
    used = set(re.findall(r"\$\{var\.([a-z_]+)\}", (ROOT / "databricks.yml").read_text()))
    assert used and used <= {name for name, spec in BUNDLE["variables"].items() if "default" in spec}


def test_job_resource_validates_against_the_bundle_models():
    jobs = pytest.importorskip("databricks.bundles.jobs", reason="pip install -e '.[dev]'")
    job = jobs.Job.from_dict(_job())  # raises on any unknown or misspelt field
    (task,) = job.tasks
    assert task.python_wheel_task.package_name == "repo361_ingest"
    assert task.python_wheel_task.entry_point == "repo361-ingest-databricks"
    assert [lib.whl for lib in task.libraries if lib.whl] == ["./dist/*.whl"]


def test_wheel_task_entry_point_exists_and_takes_the_parameters(tmp_path):
    task = _job()["tasks"][0]["python_wheel_task"]
    module, func = PYPROJECT["project"]["scripts"][task["entry_point"]].split(":")
    source = (ROOT / "lib" / Path(*module.split("."))).with_suffix(".py").read_text()
    assert func in {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}
    assert PYPROJECT["project"]["name"].replace("-", "_") == task["package_name"]

    args = build_parser().parse_args(task["parameters"])
    assert args.command == "run"
    config = load_config(
        None,
        {"table": args.table, "watermark_table": args.watermark_table, "staging": args.staging},
        args.set_items, environ={}, cwd=tmp_path,
    )
    assert (config.table, config.watermark_table, config.staging, config.secret_scope) == (
        "main.repo361.conversations", "main.repo361.watermark", "/Volumes/main/repo361/staging", "repo361",
    )
    assert config.partition_by == ["_conversation_date"]


def test_wheel_does_not_depend_on_spark():
    """Installed as a job library, a wheel requiring pyspark would replace the runtime's Spark."""
    names = {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    assert not names & {"pyspark", "delta-spark", "databricks-connect"}
    assert set(PYPROJECT["project"]["optional-dependencies"]["spark"]) == {"pyspark==4.0.1", "delta-spark==4.0.1"}
