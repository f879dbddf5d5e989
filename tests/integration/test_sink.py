"""KafkaSink against the real broker: where records land, in what order, and what it refuses."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from copyflow.plugins.transport.sink import KafkaSink, Outgoing

pytestmark = pytest.mark.integration

PARTITIONS = 3


def _topic(bootstrap: str) -> str:
    topic = f"sink-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        admin.close()
    return topic


def _read(bootstrap: str, topic: str, count: int) -> dict[int, list[tuple[bytes, bytes, list]]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    found: dict[int, list[tuple[bytes, bytes, list]]] = {}
    for index, record in enumerate(consumer):
        found.setdefault(record.partition, []).append((record.key, record.value, record.headers))
        if index + 1 == count:
            break
    consumer.close()
    return found


def _send(bootstrap: str, records: list[Outgoing], max_batch_size: int) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", max_batch_size=max_batch_size
        )
        await producer.start()
        try:
            delivered = await KafkaSink(producer).send_all(records)
            await delivered
        finally:
            await producer.stop()

    asyncio.run(run())


def test_records_land_where_a_keyed_send_puts_them_in_order(kafka_bootstrap: str) -> None:
    ours, reference = _topic(kafka_bootstrap), _topic(kafka_bootstrap)
    # 300 records over 20 keys, 200 bytes each: small batches (1 KiB) fill up and split.
    records = [
        Outgoing(ours, f"key-{i % 20}".encode(), f"{i:04d}".encode() * 50, [("n", str(i).encode())])
        for i in range(300)
    ]
    _send(kafka_bootstrap, records, max_batch_size=1024)

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for record in records:
        producer.send(reference, key=record.key, value=record.value)
    producer.flush()
    producer.close()

    landed = _read(kafka_bootstrap, ours, len(records))
    expected = _read(kafka_bootstrap, reference, len(records))
    assert len(landed) > 1, "every key landed in one partition: the test shows nothing"
    for partition, rows in expected.items():
        assert [(k, v) for k, v, _ in landed[partition]] == [(k, v) for k, v, _ in rows]
    headers = [h for rows in landed.values() for _, _, h in rows]
    assert sorted(int(h[0][1]) for h in headers) == list(range(300))


def test_a_record_bigger_than_a_batch_goes_alone_and_unkeyed_ones_too(
    kafka_bootstrap: str,
) -> None:
    topic = _topic(kafka_bootstrap)
    big = Outgoing(topic, b"big", b"x" * 5000)
    unkeyed = [Outgoing(topic, None, f"u{i}".encode()) for i in range(10)]
    _send(kafka_bootstrap, [*unkeyed, big], max_batch_size=1024)
    landed = _read(kafka_bootstrap, topic, 11)
    values = sorted(v for rows in landed.values() for _, v, _ in rows)
    assert values == sorted([b"x" * 5000, *(f"u{i}".encode() for i in range(10))])
