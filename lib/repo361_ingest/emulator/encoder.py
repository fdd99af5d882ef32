"""Fast Avro writing by patching pre-encoded conversations (hundreds of MB at tens of MB/s).

fastavro picks a union branch by validating the value against each branch, which re-walks every
nested record at every nullable level: about 2 MB/s for this deeply nested schema. Instead we build
a pool of "base" conversations once, encode each with fastavro, and remember where its
per-conversation values sit in the bytes: ids (fixed-length UUID strings) and datetimes (fixed-
length ISO strings, or 6-byte varints for timestamp-millis in 2004..2039). Conversation ``i`` is
base ``b(i)`` with fresh ids and every datetime shifted by one delta, so patching keeps every length
and the encoding stays valid. The dict view applies the same substitution to the base's values, so
fastavro reading a file back gives exactly :meth:`VariantPool.conversation`.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO, Callable

import fastavro

MAX_IDS = 24  # per-conversation ids a base may hold (participants/sessions are few)
PER_CONVERSATION_ID_FIELDS = frozenset(
    {"ConversationId", "ParticipantId", "SessionId", "ProtocolCallId", "RoomId"})
SPACING_MS = 30_000  # conversations start ~30 s apart, in index order
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAGIC = b"Obj\x01"


def zigzag_varint(n: int) -> bytes:
    """Avro ``long`` encoding."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def uuid_from(b: bytes) -> str:
    """A UUID4-formatted string from 16 bytes (faster than ``uuid.UUID``; same result)."""
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def digest(seed: int, index: int) -> bytes:
    """All randomness of conversation ``index``: base choice, start jitter, ids."""
    return hashlib.shake_128(b"conv:%d:%d" % (seed, index)).digest(8 + 16 * MAX_IDS)


def conversation_id(seed: int, index: int) -> str:
    """Id of the conversation at a global index: unique across pages added at any time."""
    return uuid_from(digest(seed, index)[8:24])


_DAY_MS = 86_400_000
_day_prefix: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Genesys-style ISO-8601 with milliseconds and ``Z`` (cached per day: this is the hot path)."""
    day, rest = divmod(ms, _DAY_MS)
    prefix = _day_prefix.get(day)
    if prefix is None:
        prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        _day_prefix[day] = prefix
    s, milli = divmod(rest, 1000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{prefix}{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def dt_ms(ms: int) -> datetime:
    """A timestamp-millis value as fastavro reads it back: aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=ms)


def value_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return (value - _EPOCH) // timedelta(milliseconds=1)
    return (datetime.fromisoformat(value.replace("Z", "+00:00")) - _EPOCH) \
        // timedelta(milliseconds=1)


@dataclass
class Base:
    """One pre-encoded conversation and where its variable values sit in the bytes."""

    value: dict[str, Any]
    start_ms: int
    pieces: list[bytes]  # static bytes around the slots: len(slots) + 1
    slots: list[int]  # per occurrence: 0..n_ids-1 = id j, n_ids + k = datetime k
    ids: list[str]
    times: list[int]  # distinct datetime values (ms) in the base
    size: int


class VariantPool:
    """Bases built once per (seed, schema); conversation ``i`` = patched base."""

    def __init__(self, seed: int, conversation_schema: dict[str, Any], datetime_fields: set[str],
                 make_base: Callable[[random.Random, int], dict[str, Any]], millis: bool,
                 size: int = 96) -> None:
        self.seed = seed
        self.millis = millis
        self.datetime_fields = datetime_fields
        self._parsed = fastavro.parse_schema(conversation_schema)
        self._make_base = make_base
        self._size = size
        self._bases: list[Base] | None = None

    @property
    def bases(self) -> list[Base]:
        if self._bases is None:
            self._bases = [self._build(k) for k in range(self._size)]
        return self._bases

    def _encode_time(self, ms: int) -> bytes:
        return zigzag_varint(ms) if self.millis else iso_ms(ms).encode()

    def _time_value(self, ms: int) -> Any:
        return dt_ms(ms) if self.millis else iso_ms(ms)

    def _build(self, k: int) -> Base:
        value = self._make_base(random.Random(f"base:{self.seed}:{k}"), k)
        ids: list[str] = [value["ConversationId"]]
        times: list[int] = []
        counts: dict[Any, int] = {}

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, v in node.items():
                    if v is None:
                        continue
                    if key in PER_CONVERSATION_ID_FIELDS and v not in ids:
                        ids.append(v)
                    elif key in self.datetime_fields:
                        ms = value_ms(v)
                        if ms not in times:
                            times.append(ms)
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(value)
        if len(ids) > MAX_IDS:
            raise ValueError(f"base {k} has {len(ids)} ids > MAX_IDS={MAX_IDS}")
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, self._parsed, value)
        data = buf.getvalue()
        # every occurrence of a variable value in the bytes, with its slot number
        needles = [(s.encode(), j) for j, s in enumerate(ids)]
        needles += [(self._encode_time(ms), len(ids) + k2) for k2, ms in enumerate(times)]
        hits: list[tuple[int, int, int]] = []
        for needle, slot in needles:
            at = data.find(needle)
            while at >= 0:
                hits.append((at, len(needle), slot))
                at = data.find(needle, at + len(needle))
        hits.sort()
        pieces, slots, pos = [], [], 0
        for at, length, slot in hits:
            if at < pos:
                raise ValueError(f"base {k}: overlapping variable values at byte {at}")
            pieces.append(data[pos:at])
            slots.append(slot)
            pos = at + length
        pieces.append(data[pos:])
        found = self._count_values(value, ids, times)
        if found != len(hits):
            # a coincidental byte match would make bytes and dicts disagree: refuse loudly
            raise ValueError(f"base {k}: {len(hits)} byte matches but {found} values")
        start = value_ms(value["ConversationStart"])
        return Base(value, start, pieces, slots, ids, times, len(data))

    def _count_values(self, node: Any, ids: list[str], times: list[int]) -> int:
        targets_ids = set(ids)
        targets_times = {self._time_value(ms) for ms in times}
        n = 0
        stack = [node]
        while stack:
            cur = stack.pop()
            if isinstance(cur, dict):
                stack.extend(cur.values())
            elif isinstance(cur, list):
                stack.extend(cur)
            elif isinstance(cur, str) and (cur in targets_ids or cur in targets_times):
                n += 1
            elif isinstance(cur, datetime) and cur in targets_times:
                n += 1
        return n

    # ---- per conversation ----------------------------------------------------------------------

    def _plan(self, index: int) -> tuple[Base, bytes, int]:
        d = digest(self.seed, index)
        bases = self.bases
        base = bases[int.from_bytes(d[0:4], "little") % len(bases)]
        start = base_start(index) + int.from_bytes(d[4:8], "little") % SPACING_MS
        return base, d, start - base.start_ms

    def size_of(self, index: int) -> int:
        return self._plan(index)[0].size

    def encoded(self, index: int) -> bytes:
        """The Avro bytes of conversation ``index``."""
        base, d, delta = self._plan(index)
        repl = [uuid_from(d[8 + 16 * j:24 + 16 * j]).encode() for j in range(len(base.ids))]
        repl += [self._encode_time(ms + delta) for ms in base.times]
        parts: list[bytes] = [b""] * (2 * len(base.slots) + 1)
        parts[0::2] = base.pieces
        parts[1::2] = [repl[s] for s in base.slots]
        return b"".join(parts)

    def conversation(self, index: int) -> dict[str, Any]:
        """The value of conversation ``index``, equal to what fastavro reads from the bytes."""
        base, d, delta = self._plan(index)
        mapping: dict[Any, Any] = {
            old: uuid_from(d[8 + 16 * j:24 + 16 * j]) for j, old in enumerate(base.ids)}
        for ms in base.times:
            mapping[self._time_value(ms)] = self._time_value(ms + delta)
        value: dict[str, Any] = _substitute(base.value, mapping)
        return value


def base_start(index: int) -> int:
    """Nominal start of conversation ``index``: 2024-01-01T10:00Z + 30 s per index."""
    return 1_704_103_200_000 + index * SPACING_MS


def _substitute(node: Any, mapping: dict[Any, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, mapping) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, mapping) for v in node]
    if isinstance(node, (str, datetime)):
        return mapping.get(node, node)
    return node


# ---- container ---------------------------------------------------------------------------------

def write_container(fo: BinaryIO, schema: dict[str, Any], codec: str, sync: bytes,
                    records: list[tuple[list[int], dict[str, int]]],
                    pool: VariantPool) -> None:
    """Write an Avro object container: one block per export record, streamed conversation by
    conversation (null codec: the block size is known up front because patching keeps lengths).

    ``records``: per record, the conversation indexes of its ``Entities`` and its page-level longs
    (``PageSize``, ``PageNumber``, ``Total``, ``PageCount``) in schema order.
    """
    meta = {b"avro.schema": json.dumps(schema, separators=(",", ":")).encode(),
            b"avro.codec": codec.encode()}
    header = bytearray(MAGIC + zigzag_varint(len(meta)))
    for key, val in meta.items():
        header += zigzag_varint(len(key)) + key + zigzag_varint(len(val)) + val
    header += b"\x00" + sync
    fo.write(header)
    for indexes, longs in records:
        head = b"\x02" + (zigzag_varint(len(indexes)) if indexes else b"")
        tail = b"\x00" + b"".join(b"\x02" + zigzag_varint(v) for v in longs.values())
        if codec == "null":
            size = len(head) + len(tail) + sum(pool.size_of(i) for i in indexes)
            fo.write(zigzag_varint(1) + zigzag_varint(size) + head)
            for i in indexes:
                fo.write(pool.encoded(i))
            fo.write(tail + sync)
        else:
            comp = zlib.compressobj(1, zlib.DEFLATED, -15)  # fast: generation speed matters more
            chunks = [comp.compress(head)]
            chunks += [comp.compress(pool.encoded(i)) for i in indexes]
            chunks += [comp.compress(tail), comp.flush()]
            body = b"".join(chunks)
            fo.write(zigzag_varint(1) + zigzag_varint(len(body)) + body + sync)
