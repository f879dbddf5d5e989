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
from copyflow.consumer.intake import Intake, take_in
from copyflow.consumer.metrics import FlowStats
from copyflow.consumer.pipeline import Job, Pipeline
from copyflow.consumer.pool import WorkerPool
from copyflow.plugins.catalog import ProductDeleted
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.plugins.transport.headers import DELETED_TENANT, FORMAT, SOURCE_EVENT, SUGGESTION_ID
from copyflow.plugins.transport.sink import Outgoing, Sink
from copyflow.plugins.transport.source import Record, Records, as_catalog_record
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


def _ref(job: Job) -> tuple[str, str]:
    return job.event.tenant, job.event.data.product_id


@dataclass
class BatchReport:
    events: int = 0  # records
    generated: int = 0
    cache_hits: int = 0
    skipped: int = 0  # unchanged content
    unimproved: int = 0  # not published: no candidate improved on the original
    other_tenants: int = 0
    deleted: int = 0  # tombstones published
    duplicates: int = 0  # redelivered events dropped
    ignored: int = 0  # records that say nothing about product copy
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
        """The commit protocol for one batch of records, in order (BatchSource commits the
        batch's offsets when this returns):

        1. read each record in its topic's format: product events (each gets the adapter that
           makes its tenant's copy now), deletions, or a dead letter saying why not. Fields a
           source left out come from the product's previous content; redelivered events drop.
        2. skip each (event, channel) whose content is unchanged since its last suggestion.
        3. look the rest up in the cache; generate the misses in the worker pool, once per
           distinct key across all workers (single flight), and check that copy; the cache
           keeps it checked.
        4. build each suggestion.
        5. publish, in the order of their records: each suggestion keyed by product id (and
           its catalog update, where the format has one and formats.write_back_topic is set),
           each deletion's tombstone, each dead letter.
        6. wait until the broker has acknowledged every publish.
        7. forget deleted products, remember the content just published (for step 2 of later
           events), the content and event ids formats need; after step 6, so a crash in between
           repeats work instead of losing a suggestion.
        8. count what was done. Only a batch that got here is committed, so a crash before
           this step replays the batch (at-least-once; suggestion ids are deterministic).
        """
        await self.pool.ready()
        report = BatchReport(events=len(events))
        # 1. read
        records = [as_catalog_record(event) for event in events]
        intake = await take_in(records, self.pipeline, self.cache, self.router, self.options.tenant)
        report.other_tenants = intake.other_tenants
        report.duplicates = intake.duplicates
        report.ignored = intake.ignored

        # Until this batch is done, a switch does not unload the adapters it was routed to.
        jobs = intake.jobs
        pinned = self.router.pin(job.route for job in jobs) if self.router else []
        try:
            return await self._finish(events, report, intake)
        finally:
            if self.router is not None:
                self.router.unpin(pinned)

    async def _finish(self, events: Records, report: BatchReport, intake: Intake) -> BatchReport:
        """Steps 2 to 8 of process()."""
        options = self.options
        jobs, owners = intake.jobs, intake.job_records
        # 2. skip unchanged content
        if self.cache is not None and not options.force:
            unchanged = await self.cache.unchanged(jobs, self.model)
            kept = [i for i, same in enumerate(unchanged) if not same or i in intake.fresh]
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

        # 5. publish, in record order: a product deleted and made again in one batch ends
        # with its suggestion, one made and deleted ends with its tombstone.
        base = self.model
        outgoing: list[tuple[int, Outgoing]] = []
        published: list[tuple[int, Job, Suggestion]] = []
        unimproved: list[tuple[int, Job]] = []
        dead = list(intake.dead)
        skip_unimproved = self.settings.checks.skip_unimproved
        for job, index, outcome in zip(jobs, owners, outcomes, strict=True):
            if isinstance(outcome, Suggestion) and skip_unimproved and outcome.improved is False:
                # Merchants are not asked to review their own text back.
                unimproved.append((index, job))
            elif isinstance(outcome, Suggestion):
                key = job.suggestion_key(base)
                outgoing.append((index, self._suggestion_record(outcome, key)))
                update = self._update_record(events[index].topic, outcome, key)
                if update is not None:
                    outgoing.append((index, update))
                published.append((index, job, outcome))
            else:
                dead.append((index, outcome))
        outgoing += [(index, self._tombstone(deleted)) for index, deleted in intake.deleted]
        outgoing += [(index, self._dead_letter_record(events[index], dl)) for index, dl in dead]
        outgoing.sort(key=lambda pair: pair[0])  # stable: a record's outputs keep their order
        delivered = await self.sink.send_all([record for _, record in outgoing])

        # 6. wait for the broker's acknowledgements
        await delivered

        # 7. forget deleted products; remember what was published (and what had nothing
        # better to say), the content and the event ids formats need
        if self.cache is not None:
            await self._remember(intake, published, unimproved)

        # 8. count
        report.unimproved = len(unimproved)
        report.deleted = len(intake.deleted)
        self.stats.unimproved += len(unimproved)
        self._count(report, [(job, s) for _, job, s in published], [d for _, d in dead])
        return report

    async def _remember(
        self,
        intake: Intake,
        published: Sequence[tuple[int, Job, Suggestion]],
        unimproved: Sequence[tuple[int, Job]],
    ) -> None:
        """Step 7. What a deletion later in the batch undid is not remembered."""
        assert self.cache is not None
        await self.cache.forget([(d.tenant, d.product_id) for _, d in intake.deleted])
        done = [(i, job) for i, job, _ in published] + list(unimproved)
        await self.cache.remember(
            [job for i, job in done if intake.after_last_deletion(_ref(job), i)], self.model
        )
        contents = [
            (event_tenant, product)
            for (event_tenant, _, _), (i, product) in intake.contents.items()
            if intake.after_last_deletion((event_tenant, product.product_id), i)
        ]
        await self.cache.keep_content([p for _, p in contents], [t for t, _ in contents])
        await self.cache.mark_handled(intake.handled)

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
        dead: Sequence[DeadLetter],
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
        self.stats.dead_letters.update(letter.kind for letter in dead)
        self.stats.deleted += report.deleted
        self.stats.duplicates += report.duplicates
        log.info(
            "batch done: %d records, %d suggestions (%d from the cache), %d not improved, "
            "%d deleted, %d dead letters",
            report.events,
            len(published),
            report.cache_hits,
            report.unimproved,
            report.deleted,
            report.dead_letters,
        )

    def _suggestion_record(self, suggestion: Suggestion, suggestion_key: str) -> Outgoing:
        return Outgoing(
            self.settings.topics.suggestions,
            suggestion.product_id.encode(),
            suggestion.model_dump_json().encode(),
            [(SUGGESTION_ID, suggestion_key.encode()), *self.options.headers],
        )

    def _update_record(
        self, topic: str, suggestion: Suggestion, suggestion_key: str
    ) -> Outgoing | None:
        """The suggestion as its catalog's own update, on formats.write_back_topic."""
        where = self.settings.formats.write_back_topic
        if where is None:
            return None
        fmt = self.pipeline.formats.of(topic)
        try:
            document = fmt.encode_update(suggestion)
        except Exception:  # a format's bug costs its write-back, never the suggestion
            log.exception("format %s could not encode suggestion %s", fmt.name, suggestion_key)
            self.stats.write_back_errors += 1
            return None
        if document is None:
            return None
        headers = [(SUGGESTION_ID, suggestion_key.encode()), (FORMAT, fmt.name.encode())]
        return Outgoing(
            where, suggestion.product_id.encode(), document, [*headers, *self.options.headers]
        )

    def _tombstone(self, deleted: ProductDeleted) -> Outgoing:
        """The deleted product's key with no value: a compacted suggestions topic forgets it."""
        headers = [(DELETED_TENANT, deleted.tenant.encode()), (SOURCE_EVENT, deleted.id.encode())]
        return Outgoing(
            self.settings.topics.suggestions,
            deleted.product_id.encode(),
            None,
            [*headers, *self.options.headers],
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
