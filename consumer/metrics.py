"""Prometheus metrics, read at scrape time from the counters the parts keep.

The pool, the cache and the stream keep plain counters (no prometheus import there); this
collector turns them into metric families when /metrics is scraped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from copyflow.consumer.adapters import AdapterStats
from copyflow.consumer.cache import CacheStats
from copyflow.consumer.pool import PoolStats

log = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass
class FlowStats:
    """What the stream did with the events it consumed."""

    events: int = 0
    suggestions: Counter[str] = field(default_factory=Counter)  # by source: generated / cache
    dead_letters: Counter[str] = field(default_factory=Counter)  # by kind
    generate_seconds: float = 0.0  # time spent in the cache-and-generate step
    generate_batches: int = 0
    unimproved: int = 0  # suggestions not published: no candidate improved on the original
    deleted: int = 0  # deletions: tombstones published
    duplicates: int = 0  # redelivered events dropped (formats whose source redelivers)
    write_back_errors: int = 0  # suggestions a format failed to encode as a catalog update


class StatsCollector(Collector):
    def __init__(
        self,
        flow: FlowStats,
        pool: PoolStats,
        pool_capacity: int,
        cache: CacheStats | None,
        adapters: AdapterStats | None = None,
    ) -> None:
        self.adapters = adapters or AdapterStats()
        self.flow = flow
        self.pool = pool
        self.pool_capacity = pool_capacity
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        yield from self._flow()
        yield from self._pool()
        if self.cache is not None:
            yield from self._cache()
        yield from _counters(
            "copyflow_adapter_",
            self.adapters,
            (
                ("switches", "Scopes switched to another adapter (or back to the base model)."),
                ("refused", "Adapter releases not applied: incompatible, unloadable, malformed."),
                ("layout_switches", "Scopes switched to other learned title layouts."),
            ),
        )

    def _flow(self) -> Iterator[Metric]:
        flow = self.flow
        yield CounterMetricFamily(
            "copyflow_events", "Product events consumed and acknowledged.", value=flow.events
        )
        suggestions = CounterMetricFamily(
            "copyflow_suggestions", "Suggestions published, by source.", labels=["source"]
        )
        for source in ("generated", "cache"):
            suggestions.add_metric([source], flow.suggestions[source])
        yield suggestions
        yield CounterMetricFamily(
            "copyflow_unimproved",
            "Suggestions not published because no candidate improved on the original "
            "(checks.skip_unimproved).",
            value=flow.unimproved,
        )
        yield from _counters(
            "copyflow_",
            flow,
            (
                ("deleted", "Product deletions: tombstones published on the suggestions topic."),
                ("duplicates", "Redelivered events dropped (their event id was handled)."),
                ("write_back_errors", "Suggestions a format failed to encode as an update."),
            ),
        )
        dead = CounterMetricFamily(
            "copyflow_dead_letters", "Events and requests dead-lettered, by kind.", labels=["kind"]
        )
        for kind, count in sorted(flow.dead_letters.items()):
            dead.add_metric([kind], count)
        yield dead
        yield CounterMetricFamily(
            "copyflow_generate_step_seconds",
            "Time spent looking up and generating copy, summed over batches of events.",
            value=flow.generate_seconds,
        )
        yield CounterMetricFamily(
            "copyflow_generate_step_batches",
            "Batches of events that went through the generate step.",
            value=flow.generate_batches,
        )

    def _pool(self) -> Iterator[Metric]:
        pool = self.pool
        yield GaugeMetricFamily(
            "copyflow_pool_queue_depth", "Requests waiting for a batch.", value=pool.queued
        )
        yield GaugeMetricFamily(
            "copyflow_pool_in_flight", "Requests queued or generating.", value=pool.in_flight
        )
        yield GaugeMetricFamily(
            "copyflow_pool_capacity",
            "Most requests in flight; the stream stops pulling at this.",
            value=self.pool_capacity,
        )
        yield from _counters(
            "copyflow_pool_",
            pool,
            (
                ("requests", "Requests generated by the pool."),
                ("new_tokens", "Tokens generated by the pool."),
                ("requests_failed", "Requests that ended as dead letters in the pool."),
                ("restarts", "Generator processes restarted."),
            ),
        )
        buckets: list[tuple[str, float]] = []
        for bound in BATCH_BUCKETS:
            count = sum(n for size, n in pool.batch_sizes.items() if size <= bound)
            buckets.append((str(bound), count))
        buckets.append(("+Inf", sum(pool.batch_sizes.values())))
        yield HistogramMetricFamily(
            "copyflow_pool_batch_size",
            "Requests per batch handed to a generator process.",
            buckets=buckets,
            sum_value=sum(size * n for size, n in pool.batch_sizes.items()),
        )

    def _cache(self) -> Iterator[Metric]:
        assert self.cache is not None
        yield from _counters(
            "copyflow_cache_",
            self.cache,
            (
                ("hits", "Suggestions answered without generating for them."),
                ("misses", "Generations started because nothing was cached."),
                ("skips", "Suggestions skipped: content unchanged since the last one."),
                ("single_flight_waits", "Keys another worker was generating, waited for."),
                ("single_flight_abandoned", "Waits that ended without a result, generated here."),
                ("single_flight_takeovers", "Locks taken over from a dead or restarted owner."),
                ("bypasses", "Suggestions made without the cache because of Redis trouble."),
                ("redis_errors", "Redis calls that failed or timed out."),
            ),
        )


def _counters(prefix: str, stats: object, fields: tuple[tuple[str, str], ...]) -> Iterator[Metric]:
    """One counter per stats field, named prefix + field."""
    for name, help_text in fields:
        yield CounterMetricFamily(prefix + name, help_text, value=getattr(stats, name))


def metrics_registry(collector: Collector) -> CollectorRegistry:
    """The registry /metrics exposes (plugins.transport.health serves it)."""
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
