"""Built-in emulator of the Repo361 raw-data export API (DESIGN §8).

Tests, the demo and the benchmark run the real job against it over real loopback HTTP; nothing
mocks ``requests``. See :class:`Emulator`.
"""

from .core import END_STYLES, Emulator
from .faults import Faults
from .server import RequestRecord

__all__ = ["END_STYLES", "Emulator", "Faults", "RequestRecord"]
