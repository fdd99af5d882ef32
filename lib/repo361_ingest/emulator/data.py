"""Seeded, plausible Genesys Cloud conversation-detail values, written as Avro files.

Conversation ``i`` depends only on the seed and ``i`` (see :mod:`.encoder`: a seeded base shape
with fresh ids and shifted times), so any file can be generated alone, in any order, and always
comes out byte-identical; ids stay unique when pages are added later.

Only the fields a data engineer looks at are filled (ids, times, media type, direction, purposes,
segments in time order, metrics, flow, MOS); the long tail of the SDK model stays null, as in real
exports. Base conversations are complete dicts (every schema field present, mostly None) so what
fastavro reads back equals what :meth:`ConversationFactory.conversations` yields.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from .encoder import VariantPool, conversation_id, dt_ms, iso_ms, write_container
from .layout import FileSpec
from .schema import conversation_schema, datetime_fields, load_schema, record_fields

__all__ = ["ConversationFactory", "conversation_id", "stable_uuid"]

CONVERSATION = "AnalyticsConversationWithoutAttributes"
PARTICIPANT = "AnalyticsParticipantWithoutAttributes"
SESSION = "AnalyticsSession"
SEGMENT = "AnalyticsConversationSegment"
METRIC = "AnalyticsSessionMetric"
FLOW = "AnalyticsFlow"
MEDIA_STAT = "AnalyticsMediaEndpointStat"

BASE_MS = 1_704_103_200_000  # 2024-01-01T10:00:00Z: conversations start here and move forward

MEDIA_TYPES = ("voice", "voice", "voice", "voice", "callback", "chat", "chat", "email", "message",
               "message")
NAMES = ("Zoë Müller", "José Álvarez", "Ólafur Þórsson", "Łukasz Wróbel", "山田 太郎",
         "Амелия Смирнова", "Søren Østergaard", "Chloé Dubois", "Nguyễn Văn An", "Ayşe Yılmaz",
         "O'Brien, Siobhán", "María-José Peña", "Ahmed Al-Farsi", "John Smith", "Priya Raman",
         "김민준", "Émile Zola", "Märta Ångström")
WRAP_UP_CODES = tuple(f"ee6bc2fa-0000-4000-8000-00000000000{i}" for i in range(6))
DISCONNECTS = ("client", "peer", "endpoint", "client", "peer")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")


def stable_uuid(*parts: object) -> str:
    """A UUID4-shaped id that depends only on ``parts`` (deterministic across processes)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


class ConversationFactory:
    """Builds the Avro records of a file; knows the schema version and the datetime style."""

    def __init__(self, seed: int, schema_version: int = 1, timestamps: str = "iso",
                 codec: str = "null") -> None:
        self.seed = seed
        self.schema_version = schema_version
        self.timestamps = timestamps
        self.codec = codec
        self.schema = load_schema(schema_version, timestamps)
        fields = record_fields(self.schema)
        self._templates = {name: dict.fromkeys(names) for name, names in fields.items()}
        self.ts: Callable[[int], Any] = iso_ms if timestamps == "iso" else dt_ms
        self.users = [stable_uuid("user", seed, i) for i in range(40)]
        self.queues = [stable_uuid("queue", seed, i) for i in range(8)]
        self.flows = [(stable_uuid("flow", seed, i), n) for i, n in
                      enumerate(("Main IVR", "After Hours", "Billing Menü", "Callback Flow"))]
        self.divisions = [stable_uuid("division", seed, i) for i in range(3)]
        self.wrapups = list(WRAP_UP_CODES)
        self.edges = [stable_uuid("edge", seed, i) for i in range(2)]
        self.pool = VariantPool(seed, conversation_schema(self.schema),
                                datetime_fields(schema_version), self.conversation,
                                millis=timestamps == "millis")

    def _new(self, record: str) -> dict[str, Any]:
        return self._templates[record].copy()

    # ---- files ---------------------------------------------------------------------------------

    def _records(self, spec: FileSpec) -> list[tuple[list[int], dict[str, int]]]:
        """Per Avro record: its conversation indexes and page-level fields, in schema order."""
        total = spec.conversation_count
        return [(list(range(first, first + count)),
                 {"PageSize": count, "PageNumber": number, "Total": total,
                  "PageCount": len(spec.records)})
                for number, (first, count) in enumerate(spec.records, start=1)]

    def file_records(self, spec: FileSpec) -> Iterator[dict[str, Any]]:
        """The Avro records of one file as dicts, exactly as fastavro reads them back."""
        for indexes, longs in self._records(spec):
            yield {"Entities": [self.pool.conversation(i) for i in indexes], **longs}

    def conversations(self, spec: FileSpec) -> Iterator[dict[str, Any]]:
        """The conversations of one file, exactly as written."""
        for indexes, _ in self._records(spec):
            for i in indexes:
                yield self.pool.conversation(i)

    def sync_marker(self, spec: FileSpec) -> bytes:
        """Seeded sync marker: the only random part of an Avro container, fixed for same bytes."""
        return hashlib.blake2b(f"sync:{self.seed}:{spec.page}:{spec.index}".encode(),
                               digest_size=16).digest()

    def write_file(self, spec: FileSpec, path: Path) -> int:
        """Write one file atomically (temp name, then rename); returns its size in bytes."""
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb", buffering=1024 * 1024) as fo:
            write_container(fo, self.schema, self.codec, self.sync_marker(spec),
                            self._records(spec), self.pool)
        os.replace(tmp, path)
        return path.stat().st_size

    # ---- one conversation ----------------------------------------------------------------------

    def conversation(self, rng: random.Random, index: int) -> dict[str, Any]:
        """One plausible base conversation; segment times only move forward."""
        media = rng.choice(MEDIA_TYPES)
        direction = "outbound" if (media == "callback" or rng.random() < 0.15) else "inbound"
        start = BASE_MS + index * 30_000 + rng.randrange(30_000)
        ongoing = rng.random() < 0.03
        conv_id = _rand_uuid(rng)  # a base's ids are placeholders, replaced per conversation
        participants: list[dict[str, Any]] = []
        t = start
        customer = self._participant(rng, "customer", rng.choice(NAMES), None)
        participants.append(customer)
        if direction == "inbound":
            if media == "voice":
                ivr_end = t + rng.randrange(8_000, 60_000)
                flow_id, flow_name = rng.choice(self.flows)
                participants.append(self._participant(rng, "ivr", flow_name, None, [self._session(
                    rng, media, direction, [self._segment("ivr", t, ivr_end, "transfer")],
                    metrics=[], flow=self._flow(flow_id, flow_name))]))
                t = ivr_end
            queue = rng.choice(self.queues)
            wait = rng.randrange(2_000, 300_000)
            abandoned = rng.random() < 0.06
            acd_metrics = [self._metric("nOffered", 1, t), self._metric("tAcd", wait, t + wait)]
            if abandoned:
                acd_metrics.append(self._metric("tAbandon", wait, t + wait))
            participants.append(self._participant(rng, "acd", "Support Queue", None, [self._session(
                rng, media, direction,
                [self._segment("interact", t, t + wait, "peer" if abandoned else "transfer", queue)],
                metrics=acd_metrics)]))
            t += wait
            if not abandoned:
                t = self._agent(rng, participants, media, direction, t, queue, ongoing)
        else:
            t = self._agent(rng, participants, media, direction, t, None, ongoing)
        end = None if ongoing else t
        customer["Sessions"] = [self._session(
            rng, media, direction,
            [self._segment("interact", start, end, None if ongoing else rng.choice(DISCONNECTS))],
            metrics=[] if end is None else [self._metric("tConnected", end - start, end)],
            stats=media == "voice")]
        conv = self._new(CONVERSATION)
        conv.update(
            ConversationId=conv_id,
            ConversationStart=self.ts(start),
            ConversationEnd=None if end is None else self.ts(end),
            OriginatingDirection=direction,
            DivisionIds=[rng.choice(self.divisions)],
            ConversationInitiator="external" if direction == "inbound" else "agent",
            CustomerParticipation=True,
            ExternalTag=f"crm-{rng.randrange(10**6):06d}" if rng.random() < 0.2 else None,
            Participants=participants,
        )
        if media == "voice":
            conv["MediaStatsMinConversationMos"] = round(rng.uniform(3.6, 4.9), 6)
            conv["MediaStatsMinConversationRFactor"] = round(rng.uniform(70.0, 93.2), 6)
        if self.schema_version >= 2:
            conv["ExportedAt"] = self.ts(t + 3_600_000)
        return conv

    def _agent(self, rng: random.Random, participants: list[dict[str, Any]], media: str,
               direction: str, t: int, queue: str | None, ongoing: bool) -> int:
        """Append the agent participant; returns the time its last segment ends."""
        alert = rng.randrange(1_500, 20_000)
        talk = rng.randrange(20_000, 900_000) if media in ("voice", "callback") else \
            rng.randrange(60_000, 1_800_000)
        hold = rng.randrange(5_000, 120_000) if rng.random() < 0.25 else 0
        acw = rng.randrange(5_000, 120_000)
        segs = [self._segment("alert", t, t + alert, None, queue)]
        t += alert
        metrics = [self._metric("tAlert", alert, t), self._metric("tAnswered", alert, t),
                   self._metric("nConnected", 1, t)]
        if hold:
            half = talk // 2
            segs.append(self._segment("interact", t, t + half, None, queue))
            segs.append(self._segment("hold", t + half, t + half + hold, None, queue))
            segs.append(self._segment("interact", t + half + hold, t + talk + hold, None, queue))
            metrics.append(self._metric("tHeld", hold, t + half + hold))
            metrics.append(self._metric("tHeldComplete", hold, t + half + hold))
        else:
            segs.append(self._segment("interact", t, t + talk, None, queue))
        t += talk + hold
        if ongoing:
            last = segs[-1]
            last["SegmentEnd"] = None
            if self.schema_version >= 2:
                last["SegmentDurationMs"] = None
        else:
            segs[-1]["DisconnectType"] = rng.choice(DISCONNECTS)
            wrap = self._segment("wrapup", t, t + acw, None, queue)
            wrap["WrapUpCode"] = rng.choice(self.wrapups)
            wrap["WrapUpNote"] = "Kunde zufrieden ✓" if rng.random() < 0.1 else None
            segs.append(wrap)
            metrics += [self._metric("tTalk", talk, t), self._metric("tTalkComplete", talk, t),
                        self._metric("tAcw", acw, t + acw),
                        self._metric("tHandle", talk + hold + acw, t + acw)]
            t += acw
        participants.append(self._participant(
            rng, "agent", rng.choice(NAMES), rng.choice(self.users),
            [self._session(rng, media, direction, segs, metrics=metrics)]))
        return t

    def _participant(self, rng: random.Random, purpose: str, name: str | None, user_id: str | None,
                     sessions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        p = self._new(PARTICIPANT)
        p.update(ParticipantId=_rand_uuid(rng),
                 ParticipantName=name, Purpose=purpose, UserId=user_id, Sessions=sessions)
        if self.schema_version >= 2:
            p["ParticipantRegion"] = REGIONS[len(name or "") % len(REGIONS)]
        return p

    def _session(self, rng: random.Random, media: str, direction: str,
                 segments: list[dict[str, Any]], metrics: list[dict[str, Any]],
                 flow: dict[str, Any] | None = None, stats: bool = False) -> dict[str, Any]:
        s = self._new(SESSION)
        s.update(SessionId=_rand_uuid(rng), MediaType=media, Direction=direction,
                 Segments=segments, Metrics=metrics or None, Flow=flow, Provider="Edge"
                 if media in ("voice", "callback") else "PureCloud Messaging")
        if media in ("voice", "callback"):
            number = f"tel:+4930{rng.randrange(10**7, 10**8)}"
            s.update(Ani=number, Dnis="tel:+498912345678", EdgeId=rng.choice(self.edges),
                     ProtocolCallId=_rand_uuid(rng), Recording=rng.random() < 0.7)
            if stats:
                stat = self._new(MEDIA_STAT)
                stat.update(Codecs=["opus"], MinMos=round(rng.uniform(3.6, 4.9), 6),
                            MinRFactor=round(rng.uniform(70.0, 93.2), 6),
                            ReceivedPackets=rng.randrange(1_000, 90_000),
                            DiscardedPackets=rng.randrange(0, 40),
                            EventTime=segments[-1]["SegmentStart"])
                s["MediaEndpointStats"] = [stat]
        elif media == "email":
            s.update(AddressFrom="kunde@example.com", AddressTo="support@example.com",
                     MessageType=None)
        else:
            s.update(MessageType="webmessaging" if media == "message" else None,
                     RoomId=_rand_uuid(rng) if media == "chat" else None)
        return s

    def _segment(self, kind: str, start: int, end: int | None, disconnect: str | None,
                 queue: str | None = None) -> dict[str, Any]:
        seg = self._new(SEGMENT)
        seg.update(SegmentType=kind, SegmentStart=self.ts(start),
                   SegmentEnd=None if end is None else self.ts(end), DisconnectType=disconnect,
                   QueueId=queue, Conference=False)
        if self.schema_version >= 2:
            seg["SegmentDurationMs"] = None if end is None else end - start
            seg["Sentiment"] = round(((start // 7) % 200 - 100) / 100, 2)
        return seg

    def _metric(self, name: str, value: int, at_ms: int) -> dict[str, Any]:
        m = self._new(METRIC)
        m.update(Name=name, Value=value, EmitDate=self.ts(at_ms))
        return m

    def _flow(self, flow_id: str, flow_name: str) -> dict[str, Any]:
        f = self._new(FLOW)
        f.update(FlowId=flow_id, FlowName=flow_name, FlowType="inboundcall", FlowVersion="4.0",
                 EntryType="dnis", EntryReason="tel:+498912345678", ExitReason="TRANSFER",
                 TransferType="ACD", StartingLanguage="de-de", EndingLanguage="de-de")
        return f


def _rand_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
