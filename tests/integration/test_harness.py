"""The harness's services are real: a Kafka-protocol broker and a Redis server."""

from __future__ import annotations

import uuid

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


def test_redis_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = f"copyflow-test-{uuid.uuid4().hex}"
    try:
        assert client.ping()
        client.set(key, b"value", ex=30)
        assert client.get(key) == b"value"
    finally:
        client.delete(key)
        client.close()


def test_broker_round_trip_with_headers_and_explicit_partitions(kafka_bootstrap: str) -> None:
    topic = f"harness-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 3, 1)])
        partitions = KafkaConsumer(bootstrap_servers=kafka_bootstrap).partitions_for_topic(topic)
        assert partitions == {0, 1, 2}
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(topic, key=b"k", value=b"v", headers=[("h", b"1")], partition=2).get(10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, 2)])
    consumer.seek_to_beginning()
    records = list(consumer)
    consumer.close()
    assert [(r.key, r.value, r.headers) for r in records] == [(b"k", b"v", [("h", b"1")])]
