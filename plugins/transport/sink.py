"""Publishing a batch's outputs: whole record batches on an aiokafka producer.

producer.send() costs a future, a partition lookup and an accumulator hop per record, which
measured as much as the rest of a cache hit. A batch of outputs instead goes into one record
batch per partition (more where one fills up), each submitted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import mode
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from copyflow.plugins.transport.connection import client_options
from copyflow.schemas.settings import KafkaSettings

# Bigger than aiokafka's default (16 KiB, about ten suggestions): fewer, larger produce
# requests. Kept well under the 1 MiB that brokers accept per batch by default.
BATCH_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


class Sink(Protocol):
    """Where suggestions and dead letters go."""

    async def send_all(self, records: Sequence[Outgoing]) -> Awaitable[Any]:
        """Queue records, in order per partition; the awaitable completes when the broker has
        acknowledged every one of them (and raises if any was not)."""
        ...


def new_producer(kafka: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(kafka), client_id=client_id, acks="all", max_batch_size=BATCH_BYTES
    )


class KafkaSink:
    """A Sink on an aiokafka producer. A keyed record goes to the partition producer.send()
    would choose (murmur2 of the key, as Kafka's own clients do); an unkeyed one to any."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.partitioner = DefaultPartitioner()

    async def send_all(self, records: Sequence[Outgoing]) -> Awaitable[Any]:
        producer = self.producer
        partitions = {
            topic: sorted(await producer.partitions_for(topic))
            for topic in {record.topic for record in records}
        }
        open_batches: dict[tuple[str, int], BatchBuilder] = {}
        deliveries: list[Awaitable[Any]] = []
        for record in records:
            candidates = partitions[record.topic]
            partition = self.partitioner(record.key, candidates, candidates)
            destination = (record.topic, partition)
            batch = open_batches.get(destination)
            if batch is None or not _append(batch, record):
                if batch is not None:  # full: submit it, start the next
                    deliveries.append(await _submit(producer, batch, destination))
                batch = open_batches[destination] = producer.create_batch()
                if not _append(batch, record):
                    raise MessageSizeTooLargeError(
                        f"a {len(record.value or b'')}-byte record for {record.topic} does not "
                        "fit in an empty batch"
                    )
        for destination, batch in open_batches.items():
            deliveries.append(await _submit(producer, batch, destination))
        return asyncio.gather(*deliveries)


async def _submit(
    producer: AIOKafkaProducer, batch: BatchBuilder, destination: tuple[str, int]
) -> Any:
    topic, partition = destination
    return await producer.send_batch(batch, topic, partition=partition)


def _append(batch: BatchBuilder, record: Outgoing) -> bool:
    added = batch.append(
        key=record.key, value=record.value, timestamp=None, headers=list(record.headers)
    )
    return added is not None


class ProducerService(mode.Service):
    """The worker's producer, as a Sink: started before the source reads its first batch and
    stopped after the source has finished its last one."""

    def __init__(self, kafka: KafkaSettings, client_id: str) -> None:
        super().__init__()
        self.kafka = kafka
        self.client_id = client_id
        self._sink: KafkaSink | None = None

    async def on_start(self) -> None:
        # aiokafka binds its client to the running loop, so it is made here, not in __init__.
        producer = new_producer(self.kafka, self.client_id)
        await producer.start()
        self._sink = KafkaSink(producer)

    async def on_stop(self) -> None:
        if self._sink is not None:
            await self._sink.producer.stop()

    async def send_all(self, records: Sequence[Outgoing]) -> Awaitable[Any]:
        assert self._sink is not None, "ProducerService has not started"
        return await self._sink.send_all(records)
