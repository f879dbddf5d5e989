"""Run the stream processor until stopped (SIGTERM / SIGINT stop it gracefully)."""

from __future__ import annotations

import faust
import mode

from consumer.app import Copywriter, create_app
from consumer.kafka import ensure_topics
from consumer.pipeline import Pipeline
from consumer.pool import WorkerPool
from schemas import Settings


class PoolService(mode.Service):
    """Starts the generator processes with the worker; on stop, finishes queued work first."""

    def __init__(self, pool: WorkerPool) -> None:
        super().__init__()
        self.pool = pool

    async def on_start(self) -> None:
        await self.pool.start()

    async def on_stop(self) -> None:
        await self.pool.close()


def run_worker(settings: Settings, pipeline: Pipeline, pool: WorkerPool) -> None:
    ensure_topics(settings.kafka, settings.topics)
    app = create_app(settings)
    Copywriter(app, settings, pipeline, pool)
    worker = faust.Worker(app, PoolService(pool), loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
