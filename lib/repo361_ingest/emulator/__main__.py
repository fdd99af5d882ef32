"""``python -m repo361_ingest.emulator``."""

import sys

from .cli import run

sys.exit(run())
