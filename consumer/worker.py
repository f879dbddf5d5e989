"""Run the stream processor until stopped (SIGTERM / SIGINT stop it gracefully)."""

from __future__ import annotations

import asyncio

import faust
import mode

from consumer.app import Copywriter, create_app
from consumer.kafka import ensure_topics
from consumer.pipeline import Pipeline
from consumer.pool import WorkerPool
from schemas import Settings


class PoolService(mode.Service):
    """Stops the generator processes with the worker, finishing queued work first."""

    def __init__(self, pool: WorkerPool) -> None:
        super().__init__()
        self.pool = pool

    async def on_stop(self) -> None:
        await self.pool.close()


def run_worker(settings: Settings, pipeline: Pipeline, pool: WorkerPool) -> None:
    """Raises BrokerUnavailable or PoolError before consuming anything if either cannot start."""
    ensure_topics(settings.kafka, settings.topics)
    # The pool starts on the loop faust will run on, before it: a model that cannot load
    # stops the command with that reason instead of a crashed stream processor.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(pool.start())
    app = create_app(settings)
    Copywriter(app, settings, pipeline, pool)
    worker = faust.Worker(app, PoolService(pool), loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
