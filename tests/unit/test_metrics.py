"""The Prometheus exposition of the pool's, the cache's and the stream's counters."""

from __future__ import annotations

from collections import Counter

from prometheus_client import generate_latest

from copyflow.consumer.cache import CacheStats
from copyflow.consumer.metrics import FlowStats, StatsCollector, metrics_registry
from copyflow.consumer.pool import PoolStats
from tests.harness import parse_metrics


def samples(collector: StatsCollector) -> dict[str, float]:
    return parse_metrics(generate_latest(metrics_registry(collector)).decode())


def test_pool_queue_depth_batch_sizes_and_restarts() -> None:
    pool = PoolStats(queued=5, in_flight=12, restarts=2, requests=200, new_tokens=900)
    pool.batch_sizes.update({1: 2, 8: 1, 64: 3})
    found = samples(StatsCollector(FlowStats(), pool, 256, None))
    assert found["copyflow_pool_queue_depth"] == 5
    assert found["copyflow_pool_in_flight"] == 12
    assert found["copyflow_pool_capacity"] == 256
    assert found["copyflow_pool_restarts_total"] == 2
    assert found["copyflow_pool_new_tokens_total"] == 900
    assert found["copyflow_pool_batch_size_bucket{le=1}"] == 2
    assert found["copyflow_pool_batch_size_bucket{le=4}"] == 2
    assert found["copyflow_pool_batch_size_bucket{le=8}"] == 3
    assert found["copyflow_pool_batch_size_bucket{le=64}"] == 6
    assert found["copyflow_pool_batch_size_bucket{le=+Inf}"] == 6
    assert found["copyflow_pool_batch_size_count"] == 6
    assert found["copyflow_pool_batch_size_sum"] == 2 + 8 + 192
    assert not any(name.startswith("copyflow_cache_") for name in found)


def test_flow_and_cache_counters() -> None:
    flow = FlowStats(events=10, suggestions=Counter(generated=3, cache=6))
    flow.dead_letters.update(["schema", "schema", "decode"])
    cache = CacheStats(hits=6, misses=3, skips=1, bypasses=4, redis_errors=1)
    found = samples(StatsCollector(flow, PoolStats(), 8, cache))
    assert found["copyflow_events_total"] == 10
    assert found["copyflow_suggestions_total{source=cache}"] == 6
    assert found["copyflow_suggestions_total{source=generated}"] == 3
    assert found["copyflow_dead_letters_total{kind=schema}"] == 2
    assert found["copyflow_cache_hits_total"] == 6
    assert found["copyflow_cache_skips_total"] == 1
    assert found["copyflow_cache_bypasses_total"] == 4
