"""Run the stream processor until stopped (SIGTERM / SIGINT stop it gracefully)."""

from __future__ import annotations

import asyncio
import gc
import logging

import faust
import mode

from consumer.adapters import AdapterRouter, AdapterStats, ControlListener
from consumer.app import Copywriter, create_app
from consumer.cache import CacheStats, CopyCache, RedisGuard, connect
from consumer.kafka import ensure_topics
from consumer.metrics import FlowStats, StatsCollector, serve_metrics
from consumer.pipeline import Pipeline
from consumer.pool import WorkerPool
from consumer.sink import ProducerService
from consumer.source import BatchSource
from schemas import Settings
from schemas.settings import setting_error

log = logging.getLogger(__name__)


class PoolService(mode.Service):
    """Stops the generator processes with the worker, finishing queued work first."""

    def __init__(self, pool: WorkerPool) -> None:
        super().__init__()
        self.pool = pool

    async def on_stop(self) -> None:
        await self.pool.close()


def build_cache(settings: Settings) -> CopyCache | None:
    """None when both the cache and the unchanged-content skip are turned off."""
    cache = settings.cache
    if not (cache.enabled or cache.skip_unchanged):
        return None
    guard = RedisGuard(settings.redis.retry_after_s, CacheStats())
    return CopyCache(connect(settings.redis), cache, guard)


def run_worker(settings: Settings, pipeline: Pipeline, pool: WorkerPool) -> None:
    """Raises BrokerUnavailable, PoolError or SettingsError before consuming anything if
    the broker, the model or the metrics port cannot be used."""
    ensure_topics(settings.kafka, settings.topics)
    # The pool starts on the loop faust will run on, before it: a model that cannot load
    # stops the command with that reason instead of a crashed stream processor.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    cache = build_cache(settings)
    if cache is not None and loop.run_until_complete(cache.guard.run(cache.client.ping)):
        log.info("cache: Redis answers")
    flow = FlowStats()
    adapters = AdapterStats()
    collector = StatsCollector(
        flow, pool.stats, pool.capacity, cache.stats if cache else None, adapters
    )
    try:
        serve_metrics(settings.metrics.host, settings.metrics.port, collector)
    except OSError as exc:
        raise setting_error(("metrics", "port"), f"cannot serve metrics: {exc}") from None
    loop.run_until_complete(pool.start())
    app = create_app(settings)
    router = AdapterRouter(pool, adapters)
    control = ControlListener(settings.kafka, settings.topics.control, router)
    sink = ProducerService(settings.kafka, client_id=f"{settings.kafka.group_id}-worker")
    copywriter = Copywriter(settings, pipeline, pool, cache, flow, sink, router)
    source = BatchSource(
        settings.kafka,
        settings.topics.products,
        copywriter.process,
        take=settings.worker.take_batch,
        take_within_s=settings.worker.take_within_s,
        on_crash=app.crash,
    )
    # They start in order (the adapters in use are loaded before the first product is read)
    # and stop in reverse: the source finishes its batch, then the pool, then the producer.
    app.services += [sink, PoolService(pool), control, source]
    # Everything made so far (torch, transformers, settings: some 350k objects) lives as long
    # as the process. Out of the collector's sight, full collections stop rescanning it: they
    # measured as a third of a cache hit's time.
    gc.freeze()
    worker = faust.Worker(app, loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
