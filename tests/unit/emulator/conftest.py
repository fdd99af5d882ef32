"""Fixtures: a small started emulator and a client for it."""

from __future__ import annotations

from typing import Iterator

import pytest
from emu_client import Client

from repo361_ingest.emulator import Emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(conversations=24, pages=3, files_per_page=2, records_per_file=2, seed=11) as e:
        yield e


@pytest.fixture
def client(emu: Emulator) -> Client:
    return Client(emu)
