"""The ``repo361-ingest`` command: run, demo, status, emulator.

Exit codes: 0 success (also "no new data"), 1 the run failed (nothing of the failing batch was
committed), 2 bad usage or configuration, 3 another run committed first, 4 unexpected error.
The last stdout line of ``run`` is the JSON summary; the last stderr line says what failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from repo361_ingest import logs
from repo361_ingest.config import IngestConfig, load_config
from repo361_ingest.errors import ConcurrentRunError, ConfigError, IngestError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONCURRENT, EXIT_INTERNAL = 0, 1, 2, 3, 4
PROG = "repo361-ingest"


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of DESIGN §3, shared by ``repo361-ingest run`` and the spark-submit job."""
    parser.add_argument("--config", metavar="PATH", help="YAML config (default: conf/defaults.yaml + conf/local.yaml)")
    parser.add_argument("--api-base-url", metavar="URL")
    parser.add_argument("--token-url", metavar="URL")
    parser.add_argument("--table", metavar="T", help="target Delta table: a path or catalog.schema.table")
    parser.add_argument("--watermark-table", metavar="W", help="watermark Delta table: a path or a name")
    parser.add_argument("--staging", metavar="DIR", help="staging root visible to every executor")
    parser.add_argument("--format", metavar="FMT", help="export format (only 'avro' is supported)")
    parser.add_argument("--max-pages", metavar="N", type=int, help="stop after N pages")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="set_items",
                        help="any other config key (repeatable)")


def config_from_args(args: argparse.Namespace) -> IngestConfig:
    cli_values = {
        "api_base_url": args.api_base_url,
        "token_url": args.token_url,
        "table": args.table,
        "watermark_table": args.watermark_table,
        "staging": args.staging,
        "format": args.format,
        "max_pages": args.max_pages,
    }
    return load_config(args.config, cli_values, args.set_items)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: {logs.scrub(message)}", file=sys.stderr, flush=True)
    return code


def _print_summary(summary: dict[str, Any]) -> None:
    print(logs.scrub(json.dumps(summary, sort_keys=True, default=str)), flush=True)


def _committed(exc: BaseException) -> str:
    """Say what the run committed before ``exc``."""
    summary = getattr(exc, "summary", None)
    if summary is None:
        return "nothing committed"
    return f"{summary.batches} batch(es) committed, watermark at page {summary.end_page_seq}"


def _fail_run(message: str, code: int, exc: BaseException) -> int:
    """The stderr line, then the summary (if any) as the last stdout line."""
    _fail(message, code)
    summary = getattr(exc, "summary", None)
    if summary is not None:
        _print_summary(summary.to_dict())
    return code


def execute_run(config: IngestConfig, spark: Any = None) -> int:
    """Run the job with ``config`` and report it the way DESIGN §3 says."""
    from repo361_ingest.credentials import databricks_dbutils, resolve_credentials
    from repo361_ingest.run import run_ingest
    from repo361_ingest.spark import get_session

    from repo361_ingest import failpoints

    logs.configure(config.log_level)
    failpoints.arm()  # test-only crash hook; a no-op unless REPO361_CRASH_AT is set
    try:
        for key in ("table", "watermark_table", "staging"):
            config.require(key)
        spark = spark or get_session()
        credentials = resolve_credentials(config, dbutils=databricks_dbutils(spark) if config.secret_scope else None)
        summary = run_ingest(spark, config, credentials)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    except IngestError as exc:
        code = EXIT_CONCURRENT if isinstance(exc, ConcurrentRunError) else EXIT_FAILED
        return _fail_run(f"run failed: {exc} ({_committed(exc)}; the failing batch committed nothing)", code, exc)
    except Exception as exc:  # noqa: BLE001 - Spark/Delta/py4j errors still get a summary and a line
        from repo361_ingest.run import short_error

        log.debug("unexpected error", exc_info=True)
        return _fail_run(
            f"run failed with an unexpected error: {short_error(exc)} ({_committed(exc)};"
            " the failing batch committed nothing)",
            EXIT_INTERNAL,
            exc,
        )
    # The human line first, the JSON last: spark-submit merges the driver's stderr into stdout,
    # and the summary must stay the last stdout line either way.
    print(
        f"{PROG}: {summary.outcome}: {summary.pages} page(s), {summary.files} file(s),"
        f" {summary.rows} row(s) in {summary.seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )
    _print_summary(summary.to_dict())
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    return execute_run(config_from_args(args))


def _cmd_status(args: argparse.Namespace) -> int:
    from repo361_ingest.spark import get_session
    from repo361_ingest.watermark import history

    config = config_from_args(args)
    logs.configure(config.log_level)
    table = config.require("watermark_table")
    spark = get_session()
    rows = history(spark, table, config.source, limit=args.limit)
    if not rows:
        print(f"no committed batch for source {config.source!r} in {table}")
        return EXIT_OK
    head = rows[0]
    print(f"source {config.source!r}: position after page {head.page_seq}, committed {head.committed_at}")
    print(f"{'page_seq':>9} {'committed_at':<26} {'run_id':<28} {'files':>6} {'rows':>9} {'MB':>9}")
    for r in rows:
        flag = " (repaired)" if r.repaired else ""
        print(f"{r.page_seq:>9} {str(r.committed_at):<26} {r.run_id:<28} {r.files:>6} {r.rows:>9} {r.bytes / 1e6:>9.2f}{flag}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from repo361_ingest.emulator import Emulator
    from repo361_ingest.spark import get_session

    logs.configure("WARNING" if not args.verbose else "INFO")
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with Emulator(conversations=args.conversations, pages=args.pages, seed=args.seed) as emu:
        config = load_config(
            None,
            {
                "api_base_url": emu.api_base_url,
                "token_url": emu.token_url,
                "table": str(out / "conversations"),
                "watermark_table": str(out / "watermark"),
                "staging": tempfile.mkdtemp(prefix="repo361-demo-staging-"),
            },
            [],
            environ={},
            cwd=Path(tempfile.gettempdir()),  # the demo ignores conf/local.yaml on purpose
        )
        import os

        os.environ["REPO361_CLIENT_ID"] = emu.client_id
        os.environ["REPO361_CLIENT_SECRET"] = emu.client_secret
        print(f"emulator serving {emu.page_count} pages at {emu.api_base_url}")
        spark = get_session("repo361-ingest-demo")
        code = execute_run(config, spark)
        if code != EXIT_OK:
            return code
        frame = spark.read.format("delta").load(str(out / "conversations"))
        print(f"\nDelta table {out / 'conversations'}: {frame.count()} conversations; a few of them:")
        frame.selectExpr(
            "ConversationId", "ConversationStart", "OriginatingDirection",
            "size(Participants) AS participants", "_page_seq", "_source_file",
        ).orderBy("_page_seq", "ConversationStart").show(5, truncate=False)
        print(f"watermark table: {out / 'watermark'}  (see: {PROG} status --watermark-table {out / 'watermark'})")
    return EXIT_OK


def _cmd_crash_sweep(args: argparse.Namespace) -> int:
    from repo361_ingest import crashtest

    return crashtest.run_from_args(args)


def _cmd_bench(args: argparse.Namespace) -> int:
    from repo361_ingest import bench

    return bench.main(args)


def _cmd_emulator(args: argparse.Namespace) -> int:
    from repo361_ingest.emulator import cli as emulator_cli

    return int(emulator_cli.main(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Repo361 export -> Delta Lake ingestion")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="ingest new export pages into the Delta target")
    add_run_arguments(run)
    run.set_defaults(func=_cmd_run)

    status = sub.add_parser("status", help="show the stored position and recent runs")
    add_run_arguments(status)
    status.add_argument("--limit", type=int, default=20, help="how many watermark rows to show")
    status.set_defaults(func=_cmd_status)

    demo = sub.add_parser("demo", help="run the job against the built-in emulator into a local folder")
    demo.add_argument("--out", default="demo-output", help="folder for the demo tables (recreated)")
    demo.add_argument("--conversations", type=int, default=200)
    demo.add_argument("--pages", type=int, default=4)
    demo.add_argument("--seed", type=int, default=361)
    demo.add_argument("--verbose", action="store_true")
    demo.set_defaults(func=_cmd_demo)

    sweep = sub.add_parser("crash-sweep", help="SIGKILL the job at many points, rerun, count lost/duplicated rows")
    from repo361_ingest import crashtest

    crashtest.add_arguments(sweep)
    sweep.set_defaults(func=_cmd_crash_sweep)

    emulator = sub.add_parser("emulator", help="serve the built-in Repo361 emulator on loopback")
    try:
        from repo361_ingest.emulator import cli as emulator_cli

        emulator_cli.add_arguments(emulator)
    except ImportError:  # pragma: no cover - the emulator ships with the package
        pass
    emulator.set_defaults(func=_cmd_emulator)

    bench = sub.add_parser("bench", help="benchmark the job against Spark's floor and the notebook way")
    from repo361_ingest import bench as bench_module

    bench_module.add_arguments(bench)
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    except IngestError as exc:
        return _fail(f"failed: {exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted; the watermark stays at the last committed batch", EXIT_FAILED)
    except Exception as exc:  # noqa: BLE001 - the one place that turns surprises into an exit code
        log.debug("unexpected error", exc_info=True)
        return _fail(f"unexpected error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)


def job_main(argv: list[str] | None = None) -> int:
    """Entry point of ``spark-submit jobs/ingest_conversations.py`` (the run flags, no subcommand)."""
    parser = argparse.ArgumentParser(prog="ingest_conversations.py", description="Repo361 -> Delta")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return execute_run(config_from_args(args))
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001
        return _fail(f"unexpected error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
