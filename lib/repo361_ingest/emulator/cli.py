"""``repo361-ingest emulator`` / ``python -m repo361_ingest.emulator``: serve a fake export.

Prints shell ``export`` lines so a demo or a manual run of the job can point at the emulator.
The printed credentials are the emulator's own fake ones, never real secrets.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .core import END_STYLES, Emulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's flags to ``parser`` (the lead's CLI reuses this for its subcommand)."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8361, help="API port (0 = any free port)")
    parser.add_argument("--storage-port", type=int, default=0, help="file storage port")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--files-per-page", type=int, default=2)
    parser.add_argument("--records-per-file", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end-style", choices=END_STYLES, default="same_token")
    parser.add_argument("--schema-version", type=int, choices=(1, 2), default=1)
    parser.add_argument("--timestamps", choices=("iso", "millis"), default="iso")
    parser.add_argument("--storage-redirect", action="store_true",
                        help="download URLs point at the API, which redirects to storage")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--bandwidth-bytes-per-s", type=float, default=None)


def build(args: argparse.Namespace) -> Emulator:
    """An (unstarted) emulator from parsed arguments."""
    return Emulator(conversations=args.conversations, pages=args.pages,
                    files_per_page=args.files_per_page, records_per_file=args.records_per_file,
                    seed=args.seed, end_style=args.end_style, schema_version=args.schema_version,
                    timestamps=args.timestamps, host=args.host, port=args.port,
                    storage_port=args.storage_port, storage_redirect=args.storage_redirect,
                    latency_ms=args.latency_ms, bandwidth_bytes_per_s=args.bandwidth_bytes_per_s)


def main(args: argparse.Namespace) -> int:
    """Start the emulator, print how to reach it, serve until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    emu = build(args).start()
    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"export REPO361_API_BASE_URL={emu.api_base_url}")
        print(f"export REPO361_TOKEN_URL={emu.token_url}")
        print(f"export REPO361_CLIENT_ID={emu.client_id}")
        print(f"export REPO361_CLIENT_SECRET={emu.client_secret}")
        print(f"# serving {args.conversations} conversations on {emu.page_count} pages;"
              " Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        emu.stop()
    return 0


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repo361_ingest.emulator",
                                     description="Serve a fake Repo361 raw-data export API.")
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
