"""Replaying a window of a topic: exact offsets per partition, in a consumer group of the
run's own (named from its arguments), so live processing is untouched and a stopped replay
resumes where it committed."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from copyflow.consumer.pipeline import Pipeline
from copyflow.consumer.runs import Checkpoint
from copyflow.plugins.catalog import PartialEvent, ProductDeleted
from copyflow.plugins.transport.connection import client_options
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.plugins.transport.source import Record, Records, as_catalog_record, next_offsets
from copyflow.schemas import ProductEvent
from copyflow.schemas.settings import KafkaSettings


class ReplayError(ValueError):
    pass


@dataclass(frozen=True)
class Bound:
    """One end of the window: a time, or an offset per partition (missing partitions: the
    topic's beginning for a start, its end for a stop)."""

    time: datetime | None = None
    offsets: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def parse(cls, text: str) -> Bound:
        """'2026-11-01T10:00:00Z' or '0=120,1=98' (partition=offset)."""
        if "=" in text:
            try:
                pairs = [part.split("=", 1) for part in text.split(",") if part]
                return cls(offsets=tuple(sorted((int(p), int(o)) for p, o in pairs)))
            except ValueError:
                raise ReplayError(f"{text!r}: offsets are PARTITION=OFFSET[,...]") from None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ReplayError(
                f"{text!r} is neither a time (2026-11-01T10:00:00Z) nor offsets (0=120,1=98)"
            ) from None
        if moment.tzinfo is None:
            raise ReplayError(f"{text!r}: give the time zone (Z or +01:00)")
        return cls(time=moment)

    def __str__(self) -> str:
        if self.time is not None:
            return self.time.isoformat()
        return ",".join(f"{p}={o}" for p, o in self.offsets or ())


def run_id(
    topic: str,
    start: Bound,
    stop: Bound | None,
    tenant: str | None,
    force: bool,
    fmt: str | None = None,
) -> str:
    """The same command names the same run, which is how a stopped replay resumes."""
    text = f"{topic}\x1f{start}\x1f{stop or ''}\x1f{tenant or ''}\x1f{force}"
    if fmt is not None:  # runs named before --format existed keep their names
        text += f"\x1f{fmt}"
    return "replay-" + hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Window:
    start: dict[int, int]  # partition -> first offset to read
    stop: dict[int, int]  # partition -> first offset not to read

    def size(self) -> int:
        return sum(max(0, self.stop[p] - self.start[p]) for p in self.start)


class TopicWindow:
    """Reads [start, stop) of every partition of a topic."""

    def __init__(self, kafka: KafkaSettings, topic: str, group_id: str | None, take: int) -> None:
        self.topic = topic
        self.take = take
        self.consumer = AIOKafkaConsumer(
            **client_options(kafka),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="none",
        )

    async def __aenter__(self) -> TopicWindow:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def resolve(self, start: Bound, stop: Bound | None, resume: bool) -> Window:
        """The window's offsets; with resume, each partition starts at the run's committed
        offset when it has one (inside the window)."""
        if self.topic not in await self.consumer.topics():  # also loads the metadata
            raise ReplayError(f"topic {self.topic!r} does not exist")
        partitions = self.consumer.partitions_for_topic(self.topic)
        if not partitions:
            raise ReplayError(f"topic {self.topic!r} does not exist")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        first = await self.consumer.beginning_offsets(tps)
        last = {
            tp: await self._end(tp, first[tp], listed)
            for tp, listed in (await self.consumer.end_offsets(tps)).items()
        }
        begin = await self._offsets(start, tps, first, first, last)
        end = (
            await self._offsets(stop, tps, last, first, last)
            if stop
            else {tp.partition: last[tp] for tp in tps}
        )
        if resume:
            for tp in tps:
                committed = await self.consumer.committed(tp)
                if committed is not None:
                    begin[tp.partition] = max(begin[tp.partition], committed)
        return Window(begin, end)

    async def _record_at(self, tp: TopicPartition, offset: int) -> Record | None:
        """The first record at or after offset (None past the end)."""
        self.consumer.seek(tp, offset)
        fetched = await self.consumer.getmany(tp, timeout_ms=2000, max_records=1)
        records = fetched.get(tp, [])
        return records[0] if records else None

    async def _end(self, tp: TopicPartition, begin: int, listed: int) -> int:
        """The partition's end offset. Some brokers (the bundled tansu) list the end as the
        last batch's base offset + 1; the high watermark of a fetch is right everywhere."""
        if listed <= begin:
            return listed
        await self._record_at(tp, listed - 1)
        return max(listed, self.consumer.highwater(tp) or listed)

    async def _offsets(
        self,
        bound: Bound,
        tps: list[TopicPartition],
        default: dict[TopicPartition, int],
        first: dict[TopicPartition, int],
        last: dict[TopicPartition, int],
    ) -> dict[int, int]:
        """Offsets within what the partitions hold now (older records may have expired)."""
        if bound.offsets is not None:
            given = dict(bound.offsets)
            unknown = set(given) - {tp.partition for tp in tps}
            if unknown:
                raise ReplayError(f"{self.topic!r} has no partition {sorted(unknown)[0]}")
            return {
                tp.partition: min(max(given.get(tp.partition, default[tp]), first[tp]), last[tp])
                for tp in tps
            }
        assert bound.time is not None
        millis = int(bound.time.timestamp() * 1000)
        listed = await self.consumer.offsets_for_times({tp: millis for tp in tps})
        found = {}
        for tp in tps:
            answer = listed.get(tp)
            offset = answer.offset if answer is not None else last[tp]
            offset = min(max(offset, first[tp]), last[tp])
            if not await self._first_at(tp, offset, millis, first[tp], last[tp]):
                offset = await self._search(tp, millis, first[tp], last[tp])
            found[tp.partition] = offset
        return found

    async def _first_at(
        self, tp: TopicPartition, offset: int, millis: int, begin: int, end: int
    ) -> bool:
        """Is offset the first record at or after the time? (Checks the broker's answer: some
        brokers index the append time instead of the record's own.)"""
        if offset < end:
            record = await self._record_at(tp, offset)
            if record is None or record.timestamp < millis:
                return False
        if offset > begin:
            before = await self._record_at(tp, offset - 1)
            if before is not None and before.offset < offset and before.timestamp >= millis:
                return False
        return True

    async def _search(self, tp: TopicPartition, millis: int, begin: int, end: int) -> int:
        """Binary search on record timestamps for the first record at or after the time."""
        low, high = begin, end
        while low < high:
            middle = (low + high) // 2
            record = await self._record_at(tp, middle)
            if record is None or record.offset >= high:
                high = middle
            elif record.timestamp < millis:
                low = record.offset + 1
            else:
                high = middle
        return low

    async def batches(
        self, window: Window, commit: bool
    ) -> AsyncIterator[tuple[Records, Checkpoint]]:
        """The window's records in batches of up to take, each with its checkpoint (a commit
        in the run's group)."""
        active = {
            TopicPartition(self.topic, p): window.stop[p]
            for p in window.start
            if window.start[p] < window.stop[p]
        }
        self.consumer.assign(list(active))
        for tp in active:
            self.consumer.seek(tp, window.start[tp.partition])
        while active:
            fetched = await self.consumer.getmany(*active, timeout_ms=1000, max_records=self.take)
            records = [
                r for tp, part in fetched.items() for r in part if r.offset < active.get(tp, 0)
            ]
            for tp, stop in list(active.items()):
                if await self.consumer.position(tp) >= stop:
                    del active[tp]
                    self.consumer.pause(tp)
            if not records:
                continue

            async def checkpoint(records: Records = records) -> None:
                if commit:
                    await self.consumer.commit(next_offsets(records))

            yield records, checkpoint


async def count_window(
    window_reader: TopicWindow, window: Window, pipeline: Pipeline
) -> tuple[Counter[int], Counter[str]]:
    """--dry-run: records per partition, and what they say per tenant, read in their format
    ('(unreadable)': dead letters; '(nothing)': records that say nothing about products)."""
    partitions: Counter[int] = Counter()
    tenants: Counter[str] = Counter()
    async for records, _ in window_reader.batches(window, commit=False):
        for record in records:
            partitions[record.partition] += 1
            decoded = pipeline.decode(as_catalog_record(record))
            if isinstance(decoded, DeadLetter):
                tenants["(unreadable)"] += 1
            elif not decoded:
                tenants["(nothing)"] += 1
            for item in () if isinstance(decoded, DeadLetter) else decoded:
                tenants[
                    item.tenant if isinstance(item, ProductDeleted) else _event(item).tenant
                ] += 1
    return partitions, tenants


def _event(item: ProductEvent | PartialEvent) -> ProductEvent:
    return item.event if isinstance(item, PartialEvent) else item
