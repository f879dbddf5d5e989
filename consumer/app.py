"""The faust-streaming app: one agent that turns product events into suggestions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any, cast

import faust
from faust.types import EventT, StreamT

from consumer.cache import CopyCache, Resolved
from consumer.dead_letters import DeadLetter
from consumer.kafka import ssl_context
from consumer.metrics import FlowStats
from consumer.pipeline import Job, Pipeline, jobs_for
from consumer.pool import WorkerPool
from schemas import Settings, Suggestion

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    kafka = settings.kafka
    credentials: Any = None
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        credentials = faust.SASLCredentials(
            username=kafka.sasl_username or "",
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=ssl_context(kafka),
        )
    elif kafka.security_protocol == "SSL":
        credentials = faust.SSLCredentials(ssl_context(kafka))
    return faust.App(
        kafka.group_id,
        broker=[f"kafka://{server}" for server in kafka.servers()],
        broker_credentials=credentials,
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        # No leader topic or tables: every topic we use is created explicitly by ensure_topics.
        topic_disable_leader=True,
        topic_partitions=settings.topics.partitions,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_rebalance_timeout=kafka.rebalance_timeout_s,
        broker_max_poll_interval=kafka.max_poll_interval_s,
        broker_commit_interval=kafka.commit_interval_s,
        datadir=str(settings.worker.data_dir.expanduser()),
    )


class Copywriter:
    """Owns the commit protocol: an event's offset is acked only after its outputs are durable."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        pipeline: Pipeline,
        pool: WorkerPool,
        cache: CopyCache | None,
        stats: FlowStats,
    ) -> None:
        self.app = app
        self.settings = settings
        self.pipeline = pipeline
        self.pool = pool
        self.cache = cache
        self.stats = stats
        topics = settings.topics
        self.source = app.topic(
            topics.products,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.dead_letters = app.topic(
            topics.products_dlq, key_serializer="raw", value_serializer="raw"
        )
        app.agent(self.source, name="copywriter")(self._agent)

    async def _agent(self, agent_stream: StreamT[Any]) -> None:
        worker = self.settings.worker
        stream = cast(faust.Stream[bytes], agent_stream)
        await self.pool.ready()
        async for batch in stream.noack_take(worker.take_batch, within=worker.take_within_s):
            # noack_take yields the events themselves (so they can be acked), not values.
            events = cast(Sequence[EventT], batch)
            try:
                await self.process(events, stream)
            except Exception as exc:
                # Nothing of this batch was acked: stop the worker so that a restart
                # resumes from the last committed offset instead of skipping these events.
                log.exception("batch failed before its outputs were acknowledged")
                await self.app.crash(exc)
                raise

    async def process(self, events: Sequence[EventT], stream: faust.Stream[bytes]) -> None:
        """The commit protocol for one batch of events, in order:

        1. decode and validate each event; an invalid one becomes a dead letter.
        2. skip each (event, channel) whose content is unchanged since its last suggestion.
        3. look the rest up in the cache; generate the misses in the worker pool, once per
           distinct key across all workers (single flight).
        4. check the copy and build each suggestion.
        5. publish each suggestion, keyed by product id, and each dead letter.
        6. wait until the broker has acknowledged every publish.
        7. remember the content just published, for step 2 of later events; after step 6,
           so a crash in between repeats work instead of losing a suggestion.
        8. ack the events; only acked offsets are ever committed, so a crash before this
           step replays the batch (at-least-once; suggestion ids are deterministic).
        """
        # 1. decode and validate
        jobs: list[Job] = []
        owners: list[EventT] = []
        dead: list[tuple[EventT, DeadLetter]] = []
        for event in events:
            decoded = self.pipeline.decode(event.value)
            if isinstance(decoded, DeadLetter):
                dead.append((event, decoded))
                continue
            for job in jobs_for(decoded):
                jobs.append(job)
                owners.append(event)

        # 2. skip unchanged content
        if self.cache is not None:
            unchanged = await self.cache.unchanged(jobs, self.pool.model_info)
            kept = [i for i, same in enumerate(unchanged) if not same]
            jobs, owners = [jobs[i] for i in kept], [owners[i] for i in kept]

        # 3. cache, then generate
        started = time.perf_counter()
        resolved = await self._resolve(jobs)
        latency_ms = (time.perf_counter() - started) * 1000
        self.stats.generate_seconds += latency_ms / 1000
        self.stats.generate_batches += 1

        # 4. check and build
        outcomes = self.pipeline.build_all(
            jobs,
            [r.outcome for r in resolved],
            self.pool.model_info,
            latency_ms,
            cache_hits=[r.cache_hit for r in resolved],
        )

        # 5. publish
        deliveries: list[Awaitable[Any]] = []
        published: list[Suggestion] = []
        for event, outcome in zip(owners, outcomes, strict=True):
            if isinstance(outcome, Suggestion):
                deliveries.append(await self._publish(outcome))
                published.append(outcome)
            else:
                dead.append((event, outcome))
        for event, letter in dead:
            deliveries.append(await self._dead_letter(event, letter))

        # 6. wait for the broker's acknowledgements
        await asyncio.gather(*deliveries)

        # 7. remember what was published
        if self.cache is not None:
            await self.cache.remember(published)

        # 8. ack
        for event in events:
            await stream.ack(event)
        self._count(events, published, dead)

    async def _resolve(self, jobs: Sequence[Job]) -> list[Resolved]:
        if self.cache is None:
            outcomes = await self.pool.generate([job.request for job in jobs])
            return [Resolved(outcome, cache_hit=False) for outcome in outcomes]
        return await self.cache.resolve(jobs, self.pool.model_info, self.pool.generate)

    def _count(
        self,
        events: Sequence[EventT],
        published: Sequence[Suggestion],
        dead: Sequence[tuple[EventT, DeadLetter]],
    ) -> None:
        self.stats.events += len(events)
        hits = sum(s.cache_hit for s in published)
        self.stats.suggestions["cache"] += hits
        self.stats.suggestions["generated"] += len(published) - hits
        self.stats.dead_letters.update(letter.kind for _, letter in dead)
        log.info(
            "batch done: %d events, %d suggestions (%d from the cache), %d dead letters",
            len(events),
            len(published),
            hits,
            len(dead),
        )

    async def _publish(self, suggestion: Suggestion) -> Awaitable[Any]:
        # Straight to the producer: faust's Topic.send costs more per message than the rest
        # of a cache hit, and a suggestion needs none of its extras (codecs, callbacks).
        result: Awaitable[Any] = await self.app.producer.send(
            self.settings.topics.suggestions,
            suggestion.product_id.encode(),
            self.pipeline.adapter.encode(suggestion),
            None,
            None,
            [("copyflow.suggestion_id", str(suggestion.suggestion_id).encode())],
        )
        return result

    async def _dead_letter(self, event: EventT, letter: DeadLetter) -> Awaitable[Any]:
        message = event.message
        log.warning(
            "dead letter %s:%d@%d: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            letter.kind,
            letter.reason[:200],
        )
        result: Awaitable[Any] = await self.dead_letters.send(
            key=message.key,
            value=message.value,
            headers=letter.headers(message.topic, message.partition, message.offset),
        )
        return result
