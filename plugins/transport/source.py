"""Batches of records from Kafka, committed only as far as their handler finished them.

faust-streaming's per-event stream machinery (an Event object, a queue hop and sensor calls per
record) measured at 20-45% of what its own Kafka client reaches on these machines: as much
again as all of a cache hit's own work. So the worker reads batches with aiokafka, the client
faust runs on, and commits offsets itself; faust still runs the worker's start-up, signals and
shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata

from copyflow.plugins.catalog.base import CatalogRecord
from copyflow.plugins.transport.connection import client_options
from copyflow.plugins.transport.health import Check, Status
from copyflow.schemas.settings import KafkaSettings

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Records: TypeAlias = Sequence[Record]
Handler: TypeAlias = Callable[[Records], Awaitable[object]]


def as_catalog_record(record: Record) -> CatalogRecord:
    """The client's record as copyflow's own type, which formats see."""
    return CatalogRecord(
        value=record.value,
        key=record.key,
        headers=tuple(record.headers),
        topic=record.topic,
        timestamp_ms=record.timestamp,
    )


def next_offsets(records: Records) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offset to commit per partition: one past the last record handled."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        key = TopicPartition(record.topic, record.partition)
        offsets[key] = max(offsets.get(key, 0), record.offset + 1)
    return {key: OffsetAndMetadata(offset, "") for key, offset in offsets.items()}


class GroupMembership(ConsumerRebalanceListener):
    """Whether a consumer is a settled member of its group (for readiness): joined, its
    assignment received, no rebalance under way."""

    def __init__(self) -> None:
        self.settled = False
        self.held: list[str] = []

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.settled = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.held = sorted(f"{tp.topic}:{tp.partition}" for tp in assigned)
        log.info("assigned %s", self.held)
        self.settled = True

    def describe(self) -> str | None:
        """None while joining or rebalancing; else the partitions held (maybe none)."""
        if not self.settled:
            return None
        return ", ".join(self.held) or "none (the group has more members than partitions)"


def group_checks(
    consumer: Callable[[], AIOKafkaConsumer | None], membership: GroupMembership
) -> list[Check]:
    """Readiness of a consumer in a group: the broker answers a metadata round trip (bounded
    by the check's timeout) and the consumer is a settled member."""

    async def broker() -> Status:
        client = consumer()
        if client is None:
            return Status(False, "not connected yet")
        await client.topics()
        return Status(True, "answers")

    async def partitions() -> Status:
        held = membership.describe()
        return Status(False, "joining the group") if held is None else Status(True, held)

    return [Check("broker", broker), Check("partitions", partitions)]


class _FinishBeforeRevoke(GroupMembership):
    """A rebalance waits for the batch in hand, which commits before it lets go."""

    def __init__(self, lock: asyncio.Lock) -> None:
        super().__init__()
        self.lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await super().on_partitions_revoked(revoked)
        async with self.lock:
            pass


class BatchSource(mode.Service):
    """Reads topics in its consumer group and hands records to handle() in batches of up to
    take records (or what arrived within take_within_s of the first). After handle() returns,
    the batch's offsets are committed; if it raises, nothing of the batch is committed and the
    app crashes, so a restart resumes at the first unfinished record."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Sequence[str],
        handle: Handler,
        *,
        take: int,
        take_within_s: float,
        on_crash: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        super().__init__()
        self.topics = list(topics)
        self.handle = handle
        self.take = take
        self.take_within_s = take_within_s
        self.on_crash = on_crash
        self._lock = asyncio.Lock()
        self.kafka = kafka
        self._consumer: AIOKafkaConsumer | None = None
        self._membership = _FinishBeforeRevoke(self._lock)

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "BatchSource has not started"
        return self._consumer

    def checks(self) -> list[Check]:
        """Its readiness: the broker answers and the group is joined."""
        return group_checks(lambda: self._consumer, self._membership)

    async def join(self) -> None:
        """Start the consumer and subscribe: the group join then runs in the background, so
        a caller may load the model meanwhile. No record is handed over before start()."""
        if self._consumer is not None:
            return
        # aiokafka binds its client to the running loop, so it is made here, not in __init__.
        kafka = self.kafka
        self._consumer = AIOKafkaConsumer(
            **client_options(kafka),
            group_id=kafka.group_id,
            group_instance_id=kafka.group_instance_id,
            client_id=f"{kafka.group_id}-worker",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=int(kafka.session_timeout_s * 1000),
            heartbeat_interval_ms=int(kafka.heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(kafka.rebalance_timeout_s * 1000),
            max_poll_interval_ms=int(kafka.max_poll_interval_s * 1000),
            max_poll_records=self.take,
        )
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=self._membership)

    async def leave(self) -> None:
        """Stop the consumer without having started the service (the model failed to load)."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def on_start(self) -> None:
        await self.join()

    async def on_stop(self) -> None:
        # The loop finishes (and commits) the batch in hand before the consumer leaves.
        async with self._lock:
            if self._consumer is not None:
                await self._consumer.stop()

    async def _batch(self) -> list[Record]:
        records: list[Record] = []
        deadline = 0.0
        while len(records) < self.take:
            wait = 0.5 if not records else deadline - time.monotonic()
            if wait <= 0 or self.should_stop:
                break
            fetched = await self.consumer.getmany(
                timeout_ms=int(wait * 1000), max_records=self.take - len(records)
            )
            for part in fetched.values():
                records.extend(part)
            if records and not deadline:
                deadline = time.monotonic() + self.take_within_s
            elif not fetched and not records:
                break
        return records

    async def _commit(self, records: Records) -> None:
        """Commit a handled batch. When the group moved its partitions on meanwhile (this
        member missed a rebalance while it worked), the commit is refused; the batch's outputs
        are out, and the partitions' new owner handles its records again (at-least-once, same
        suggestion ids): nothing to stop the worker for."""
        try:
            await self.consumer.commit(next_offsets(records))
        except CommitFailedError as exc:
            log.warning(
                "%d records handled but not committed, the group rebalanced meanwhile; their "
                "partitions' new owner handles them again: %s",
                len(records),
                str(exc).splitlines()[0],
            )

    @mode.Service.task
    async def _run(self) -> None:
        while not self.should_stop:
            records = await self._batch()
            if not records:
                continue
            async with self._lock:
                # A rebalance while the batch filled may have taken some of its partitions:
                # their records are now another worker's.
                assigned = self.consumer.assignment()
                records = [r for r in records if TopicPartition(r.topic, r.partition) in assigned]
                if not records:
                    continue
                try:
                    await self.handle(records)
                    await self._commit(records)
                except Exception as exc:
                    # Nothing of this batch was committed: stop the worker so that a restart
                    # resumes from the last committed offset instead of skipping these records.
                    log.exception("batch failed before its outputs were acknowledged")
                    await self.on_crash(exc)
                    raise
