"""Run the stream processor until stopped (SIGTERM / SIGINT stop it gracefully)."""

from __future__ import annotations

import faust

from consumer.app import Copywriter, create_app
from consumer.kafka import ensure_topics
from consumer.pipeline import Pipeline
from schemas import Settings


def run_worker(settings: Settings, pipeline: Pipeline) -> None:
    ensure_topics(settings.kafka, settings.topics)
    app = create_app(settings)
    Copywriter(app, settings, pipeline)
    worker = faust.Worker(app, loglevel=settings.worker.log_level, quiet=True)
    worker.execute_from_commandline()
