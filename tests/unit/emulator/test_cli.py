"""The CLI hook: flags parse, ``python -m repo361_ingest.emulator`` serves until SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from repo361_ingest.emulator.cli import add_arguments, build

LIB = Path(__file__).resolve().parents[3] / "lib"


def test_add_arguments_builds_the_requested_emulator() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--conversations", "30", "--pages", "6",
                              "--seed", "4", "--files-per-page", "3", "--end-style", "null_token",
                              "--latency-ms", "5"])
    emu = build(args)
    try:
        assert emu.page_count == 6 and len(emu.conversation_ids()) == 30
        assert len(emu.files()) == 18 and emu.end_style == "null_token"
        assert emu.faults.latency_ms == 5 and emu.seed == 4
    finally:
        emu.stop()


def test_module_serves_and_stops_on_sigterm() -> None:
    env = dict(os.environ, PYTHONPATH=str(LIB))
    proc = subprocess.Popen([sys.executable, "-m", "repo361_ingest.emulator", "--port", "0",
                             "--conversations", "8", "--pages", "2"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert set(exports) == {"REPO361_API_BASE_URL", "REPO361_TOKEN_URL",
                                "REPO361_CLIENT_ID", "REPO361_CLIENT_SECRET"}
        r = requests.post(exports["REPO361_TOKEN_URL"], timeout=10, data={
            "client_id": exports["REPO361_CLIENT_ID"],
            "client_secret": exports["REPO361_CLIENT_SECRET"],
            "grant_type": "client_credentials"})
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
