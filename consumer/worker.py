"""Run the stream processor until stopped (SIGTERM / SIGINT stop it gracefully)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

import faust
import mode

from copyflow.consumer.adapters import AdapterRouter, AdapterStats, ControlListener
from copyflow.consumer.app import BatchReport, Copywriter, create_app
from copyflow.consumer.cache import CacheStats, CopyCache, RedisGuard, connect
from copyflow.consumer.metrics import FlowStats, StatsCollector, metrics_registry
from copyflow.consumer.pipeline import Pipeline
from copyflow.consumer.pool import WorkerPool
from copyflow.plugins.transport.health import Check, HealthServer, Status
from copyflow.plugins.transport.sink import ProducerService
from copyflow.plugins.transport.source import BatchSource, Records
from copyflow.plugins.transport.topics import ensure_topics
from copyflow.schemas import Settings
from copyflow.schemas.settings import setting_error

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
    return CopyCache(connect(settings.redis), cache, guard, settings.kafka.group_instance_id)


def worker_checks(source: BatchSource, pool: WorkerPool, cache: CopyCache | None) -> list[Check]:
    """/readyz: ready once the worker can take and commit a batch: the broker answers, the
    group is joined (partitions held, or none left for it), the generator pool is up. Redis is
    reported, not required: without it the worker generates everything."""

    async def generators() -> Status:
        return Status(*pool.readiness())

    async def redis() -> Status:
        if cache is None:
            return Status(True, "not used (cache and skip turned off)")
        if await cache.guard.run(cache.client.ping):
            return Status(True, "answers")
        return Status(False, f"unavailable; retried every {cache.guard.retry_after_s:g}s")

    return [
        *source.checks(),
        Check("generator_pool", generators),
        Check("redis", redis, gating=False),
    ]


def input_topics(settings: Settings) -> list[str]:
    """The topics the worker reads: formats.inputs's, else topics.products."""
    return list(settings.formats.inputs) or [settings.topics.products]


def extra_topics(settings: Settings) -> list[str]:
    """Topics beside copyflow's own that the worker needs: its inputs and the write-back's."""
    write_back = settings.formats.write_back_topic
    return [*input_topics(settings), *([write_back] if write_back else [])]


def run_worker(
    settings: Settings,
    make_pipeline: Callable[[], Pipeline],
    make_pool: Callable[[], WorkerPool],
) -> None:
    """Raises BrokerUnavailable, PoolError or SettingsError before consuming anything if
    the broker, the model or the HTTP port cannot be used.

    The group join starts first and runs while the pipeline and the pool are made (in
    threads: torch's import and the dtype measurement) and the model loads: a restarted
    worker is back in its group as soon as the broker lets it."""
    ensure_topics(settings.kafka, settings.topics, extra_topics(settings))
    # Everything runs on the loop faust will run: the model loads before faust starts, so a
    # model that cannot load stops the command with that reason, not a crashed processor.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings)
    copywriter: Copywriter | None = None

    async def handle(records: Records) -> BatchReport:
        assert copywriter is not None, "records before the worker was made"
        return await copywriter.process(records)

    source = BatchSource(
        settings.kafka,
        input_topics(settings),
        handle,
        take=settings.worker.take_batch,
        take_within_s=settings.worker.take_within_s,
        on_crash=app.crash,
    )
    loop.run_until_complete(source.join())
    try:
        cache = build_cache(settings)
        if cache is not None and loop.run_until_complete(cache.guard.run(cache.client.ping)):
            log.info("cache: Redis answers")
        pipeline, pool = loop.run_until_complete(
            asyncio.gather(asyncio.to_thread(make_pipeline), asyncio.to_thread(make_pool))
        )
        flow = FlowStats()
        adapters = AdapterStats()
        collector = StatsCollector(
            flow, pool.stats, pool.capacity, cache.stats if cache else None, adapters
        )
        http = settings.metrics
        health = HealthServer(
            http.host, http.port, worker_checks(source, pool, cache), metrics_registry(collector)
        )
        if http.port:
            try:
                loop.run_until_complete(health.start())
            except OSError as exc:
                raise setting_error(("metrics", "port"), f"cannot serve HTTP: {exc}") from None
        loop.run_until_complete(pool.start())
    except BaseException:
        loop.run_until_complete(source.leave())
        raise
    router = AdapterRouter(pool, adapters)
    control = ControlListener(settings.kafka, settings.topics.control, router)
    sink = ProducerService(settings.kafka, client_id=f"{settings.kafka.group_id}-worker")
    copywriter = Copywriter(settings, pipeline, pool, cache, flow, sink, router)
    # They start in order (the adapters in use are loaded before the first product is read)
    # and stop in reverse: the source finishes its batch, then the pool, then the producer.
    app.services += [sink, PoolService(pool), control, source]
    # Everything made so far (torch, transformers, settings: some 350k objects) lives as long
    # as the process. Out of the collector's sight, full collections stop rescanning it: they
    # measured as a third of a cache hit's time.
    gc.freeze()
    worker = faust.Worker(app, loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
