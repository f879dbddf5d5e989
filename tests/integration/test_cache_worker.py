"""The worker with its cache, single flight and skip, through a real broker and a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from copyflow.embedded import free_port
from tests.harness import (
    OutputReader,
    RedisServer,
    WorkerProcess,
    encoded,
    produce,
    product_event,
    scrape,
)
from tests.integration.test_worker import reader_for

pytestmark = pytest.mark.integration


def metrics_worker(
    start_worker: Callable[..., WorkerProcess], **env: str
) -> tuple[WorkerProcess, int]:
    port = free_port()
    return start_worker(COPYFLOW_METRICS__PORT=str(port), **env), port


def copy_of(event: dict[str, object], event_id: str, **data: object) -> dict[str, object]:
    again = json.loads(json.dumps(event))
    again["id"] = event_id
    again["data"].update(data)
    return again


def test_a_second_identical_event_is_a_cache_hit_without_generation(
    kafka_bootstrap: str, topic_env: dict[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    worker, port = metrics_worker(start_worker, COPYFLOW_CACHE__SKIP_UNCHANGED="false")
    topic = topic_env["COPYFLOW_TOPICS__PRODUCTS"]
    event = product_event(1)
    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        produce(kafka_bootstrap, topic, [encoded(event)])
        reader.wait_for(lambda o: len(o.suggestions) >= 1, timeout_s=120, worker=worker)
        produce(kafka_bootstrap, topic, [encoded(copy_of(event, "evt-1-again"))])
        out = reader.wait_for(lambda o: len(o.suggestions) >= 2, timeout_s=60, worker=worker)
    finally:
        reader.close()
    first, second = out.suggestions
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert (second.title, second.description) == (first.title, first.description)
    assert second.suggestion_id == first.suggestion_id
    assert second.source_event_id == "evt-1-again"
    metrics = scrape(port)
    assert metrics["copyflow_pool_requests_total"] == 1
    assert metrics["copyflow_cache_hits_total"] == 1
    assert metrics["copyflow_cache_misses_total"] == 1
    assert metrics["copyflow_suggestions_total{source=cache}"] == 1


def test_fifty_concurrent_events_for_one_new_product_generate_once(
    kafka_bootstrap: str, topic_env: dict[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    # Skip off, so all 50 events publish, whichever batches they land in.
    worker, port = metrics_worker(start_worker, COPYFLOW_CACHE__SKIP_UNCHANGED="false")
    event = product_event(5)
    events = [encoded(copy_of(event, f"evt-5-{i}")) for i in range(50)]
    produce(kafka_bootstrap, topic_env["COPYFLOW_TOPICS__PRODUCTS"], events)
    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        out = reader.wait_for(lambda o: len(o.suggestions) >= 50, timeout_s=120, worker=worker)
    finally:
        reader.close()
    assert len(out.suggestions) == 50
    assert sum(not s.cache_hit for s in out.suggestions) == 1
    assert len({(s.title, s.description) for s in out.suggestions}) == 1
    assert scrape(port)["copyflow_pool_requests_total"] == 1


def test_a_price_only_update_publishes_nothing(
    kafka_bootstrap: str, topic_env: dict[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    worker, port = metrics_worker(start_worker)
    topic = topic_env["COPYFLOW_TOPICS__PRODUCTS"]
    created = product_event(3)
    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        produce(kafka_bootstrap, topic, [encoded(created)])
        reader.wait_for(lambda o: len(o.suggestions) >= 1, timeout_s=120, worker=worker)
        price_only = copy_of(created, "evt-3-price", price="24.99", stock=7)
        price_only["type"] = "product.updated"
        retitled = copy_of(created, "evt-3-title", title="test product 3 navy cotton shirt")
        retitled["type"] = "product.updated"
        # Same partition (same key), in order: when the retitle's suggestion is out, the
        # price update before it has been processed too.
        produce(kafka_bootstrap, topic, [encoded(price_only), encoded(retitled)])
        out = reader.wait_for(lambda o: len(o.suggestions) >= 2, timeout_s=60, worker=worker)
        time.sleep(1)
        out = reader.poll()
    finally:
        reader.close()
    assert [s.source_event_id for s in out.suggestions] == ["evt-3", "evt-3-title"]
    metrics = scrape(port)
    assert metrics["copyflow_cache_skips_total"] == 1
    assert metrics["copyflow_events_total"] == 3


def test_redis_stopping_mid_run_loses_nothing_and_the_cache_returns(
    kafka_bootstrap: str,
    topic_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    own_redis: RedisServer,
) -> None:
    worker, port = metrics_worker(
        start_worker,
        COPYFLOW_REDIS__URL=own_redis.url,
        COPYFLOW_REDIS__RETRY_AFTER_S="1",
        COPYFLOW_CACHE__SKIP_UNCHANGED="false",
    )
    topic = topic_env["COPYFLOW_TOPICS__PRODUCTS"]
    reader: OutputReader = reader_for(kafka_bootstrap, topic_env)

    def feed(indexes: range, total: int) -> None:
        produce(kafka_bootstrap, topic, [encoded(product_event(i)) for i in indexes])
        reader.wait_for(lambda o: len(o.suggestions) >= total, timeout_s=180, worker=worker)

    try:
        feed(range(0, 20), 20)
        own_redis.stop()
        feed(range(20, 40), 40)
        # A repeat while Redis is down: generated again, not a cache hit.
        produce(kafka_bootstrap, topic, [encoded(copy_of(product_event(0), "evt-0-down"))])
        reader.wait_for(lambda o: len(o.suggestions) >= 41, timeout_s=60, worker=worker)
        own_redis.start()
        time.sleep(1.5)  # past redis.retry_after_s
        feed(range(40, 60), 61)
        produce(kafka_bootstrap, topic, [encoded(copy_of(product_event(45), "evt-45-again"))])
        out = reader.wait_for(lambda o: len(o.suggestions) >= 62, timeout_s=60, worker=worker)
    finally:
        reader.close()
    assert out.product_ids() == {f"p-{i}" for i in range(60)}
    by_event = {s.source_event_id: s for s in out.suggestions}
    assert not by_event["evt-0-down"].cache_hit
    assert by_event["evt-45-again"].cache_hit
    log = worker.log.read_text()
    assert log.count("Redis unavailable") == 1, worker.log_tail()
    assert "Redis is back" in log
    metrics = scrape(port)
    assert metrics["copyflow_cache_bypasses_total"] >= 21
    assert metrics["copyflow_cache_hits_total"] >= 1
