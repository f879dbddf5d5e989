"""The faust-streaming app and the processing protocol that turns product events into
suggestions."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import mode
from faust.app.base import BootStrategy

from copyflow.consumer.adapters import AdapterRouter
from copyflow.consumer.cache import CopyCache, Outcome, Resolved
from copyflow.consumer.metrics import FlowStats
from copyflow.consumer.pipeline import Job, Pipeline, jobs_for
from copyflow.consumer.pool import WorkerPool
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.plugins.transport.sink import Outgoing, Sink
from copyflow.plugins.transport.source import Record, Records
from copyflow.schemas import ModelInfo, Settings, Suggestion

log = logging.getLogger(__name__)


class _ServicesOnly(BootStrategy):
    # No faust consumer: it would join the worker's group beside BatchSource's. No faust
    # producer: the worker publishes whole record batches with its own (plugins.transport.sink).
    enable_kafka_producer = False


class CopyflowApp(faust.App):
    """faust runs the worker: start-up, signals, and stopping copyflow's services in reverse
    order of start, each finishing what it holds."""

    BootStrategy = _ServicesOnly

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.services: list[mode.ServiceT] = []
        self.producer_only = True

    def on_init_dependencies(self) -> list[mode.ServiceT]:
        return [*super().on_init_dependencies(), *self.services]


def create_app(settings: Settings) -> CopyflowApp:
    """faust runs the worker's services, signals and shutdown; it opens no Kafka client (the
    source, the sink and the control listener have their own), so it gets no broker options."""
    return CopyflowApp(
        settings.kafka.group_id,
        store="memory://",
        autodiscover=False,
        web_enabled=False,  # the worker's HTTP port is plugins.transport.health's
        datadir=str(settings.worker.data_dir.expanduser()),
    )


@dataclass(frozen=True)
class RunOptions:
    """How a run differs from live processing (replays and backfills set these)."""

    force: bool = False  # bypass the cache lookup and the unchanged-content skip
    tenant: str | None = None  # only this tenant's events; the others are counted, not processed
    headers: tuple[tuple[str, bytes], ...] = ()  # added to every suggestion


@dataclass
class BatchReport:
    events: int = 0
    generated: int = 0
    cache_hits: int = 0
    skipped: int = 0  # unchanged content
    unimproved: int = 0  # not published: no candidate improved on the original
    other_tenants: int = 0
    dead_letters: int = 0
    suggestion_ids: list[str] = field(default_factory=list)


class Copywriter:
    """Owns the processing protocol for a batch of product events; its caller commits the
    batch only after process() returned, when every output is durable."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        pool: WorkerPool,
        cache: CopyCache | None,
        stats: FlowStats,
        sink: Sink,
        router: AdapterRouter | None = None,
        options: RunOptions = RunOptions(),
    ) -> None:
        self.router = router
        self.settings = settings
        self.pipeline = pipeline
        self.pool = pool
        self.cache = cache
        self.stats = stats
        self.sink = sink
        self.options = options

    @property
    def model(self) -> ModelInfo:
        """What makes this worker's copy (its jobs name their adapters on top)."""
        return self.pipeline.served_model(self.pool.model_info)

    async def process(self, events: Records) -> BatchReport:
        """The commit protocol for one batch of events, in order (BatchSource commits the
        batch's offsets when this returns):

        1. decode and validate each event; an invalid one becomes a dead letter. Each gets
           the adapter that makes its tenant's copy now.
        2. skip each (event, channel) whose content is unchanged since its last suggestion.
        3. look the rest up in the cache; generate the misses in the worker pool, once per
           distinct key across all workers (single flight), and check that copy; the cache
           keeps it checked.
        4. build each suggestion.
        5. publish each suggestion, keyed by product id, and each dead letter.
        6. wait until the broker has acknowledged every publish.
        7. remember the content just published, for step 2 of later events; after step 6,
           so a crash in between repeats work instead of losing a suggestion.
        8. count what was done. Only a batch that got here is committed, so a crash before
           this step replays the batch (at-least-once; suggestion ids are deterministic).
        """
        await self.pool.ready()
        report = BatchReport(events=len(events))
        options = self.options
        # 1. decode and validate
        jobs: list[Job] = []
        owners: list[Record] = []
        dead: list[tuple[Record, DeadLetter]] = []
        for event in events:
            decoded = self.pipeline.decode(event.value)
            if isinstance(decoded, DeadLetter):
                dead.append((event, decoded))
                continue
            if options.tenant is not None and decoded.tenant != options.tenant:
                report.other_tenants += 1
                continue
            route = self.router.route(decoded.tenant) if self.router else None
            layouts = self.router.layouts(decoded.tenant) if self.router else None
            for job in jobs_for(decoded, route, layouts):
                jobs.append(job)
                owners.append(event)

        # Until this batch is done, a switch does not unload the adapters it was routed to.
        pinned = self.router.pin(job.route for job in jobs) if self.router else []
        try:
            return await self._finish(events, report, jobs, owners, dead)
        finally:
            if self.router is not None:
                self.router.unpin(pinned)

    async def _finish(
        self,
        events: Records,
        report: BatchReport,
        jobs: list[Job],
        owners: list[Record],
        dead: list[tuple[Record, DeadLetter]],
    ) -> BatchReport:
        """Steps 2 to 8 of process()."""
        options = self.options
        # 2. skip unchanged content
        if self.cache is not None and not options.force:
            unchanged = await self.cache.unchanged(jobs, self.model)
            kept = [i for i, same in enumerate(unchanged) if not same]
            report.skipped = len(jobs) - len(kept)
            jobs, owners = [jobs[i] for i in kept], [owners[i] for i in kept]

        # 3. cache, then generate and check
        started = time.perf_counter()
        resolved = await self._resolve(jobs)
        latency_ms = (time.perf_counter() - started) * 1000
        self.stats.generate_seconds += latency_ms / 1000
        self.stats.generate_batches += 1

        # 4. build
        outcomes = self.pipeline.build_all(
            jobs,
            [r.outcome for r in resolved],
            self.model,
            latency_ms,
            cache_hits=[r.cache_hit for r in resolved],
        )

        # 5. publish
        base = self.model
        outgoing: list[Outgoing] = []
        published: list[tuple[Job, Suggestion]] = []
        unimproved: list[Job] = []
        skip_unimproved = self.settings.checks.skip_unimproved
        for job, event, outcome in zip(jobs, owners, outcomes, strict=True):
            if isinstance(outcome, Suggestion) and skip_unimproved and outcome.improved is False:
                # Merchants are not asked to review their own text back.
                unimproved.append(job)
            elif isinstance(outcome, Suggestion):
                outgoing.append(self._suggestion_record(outcome, job.suggestion_key(base)))
                published.append((job, outcome))
            else:
                dead.append((event, outcome))
        outgoing.extend(self._dead_letter_record(event, letter) for event, letter in dead)
        delivered = await self.sink.send_all(outgoing)

        # 6. wait for the broker's acknowledgements
        await delivered

        # 7. remember what was published (and what had nothing better to say)
        if self.cache is not None:
            await self.cache.remember([job for job, _ in published] + unimproved, base)

        # 8. count
        report.unimproved = len(unimproved)
        self.stats.unimproved += len(unimproved)
        self._count(report, published, dead)
        return report

    async def _generate(self, jobs: Sequence[Job]) -> list[Outcome]:
        results = await self.pool.generate([job.request for job in jobs])
        return self.pipeline.check_all(jobs, results)

    async def _resolve(self, jobs: Sequence[Job]) -> list[Resolved]:
        if self.cache is None:
            return [Resolved(outcome, cache_hit=False) for outcome in await self._generate(jobs)]
        return await self.cache.resolve(jobs, self.model, self._generate, force=self.options.force)

    def _count(
        self,
        report: BatchReport,
        published: Sequence[tuple[Job, Suggestion]],
        dead: Sequence[tuple[Record, DeadLetter]],
    ) -> None:
        """Fill the batch's report and add it to the worker's counters."""
        base = self.model
        report.cache_hits = sum(s.cache_hit for _, s in published)
        report.generated = len(published) - report.cache_hits
        report.dead_letters = len(dead)
        report.suggestion_ids = [job.suggestion_key(base) for job, _ in published]
        self.stats.events += report.events
        self.stats.suggestions["cache"] += report.cache_hits
        self.stats.suggestions["generated"] += report.generated
        self.stats.dead_letters.update(letter.kind for _, letter in dead)
        log.info(
            "batch done: %d events, %d suggestions (%d from the cache), %d not improved, "
            "%d dead letters",
            report.events,
            len(published),
            report.cache_hits,
            report.unimproved,
            report.dead_letters,
        )

    def _suggestion_record(self, suggestion: Suggestion, suggestion_key: str) -> Outgoing:
        return Outgoing(
            self.settings.topics.suggestions,
            suggestion.product_id.encode(),
            self.pipeline.adapter.encode(suggestion),
            [
                ("copyflow.suggestion_id", suggestion_key.encode()),
                *self.options.headers,
            ],
        )

    def _dead_letter_record(self, message: Record, letter: DeadLetter) -> Outgoing:
        log.warning(
            "dead letter %s:%d@%d: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            letter.kind,
            letter.reason[:200],
        )
        return Outgoing(
            self.settings.topics.products_dlq,
            message.key,
            message.value,
            letter.headers(message.topic, message.partition, message.offset),
        )
