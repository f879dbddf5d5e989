"""`copyflow trainer`: ingest feedback continuously; train a scope when it is due; announce
releases on the control topic. A scope's title layouts are learned again as soon as new
examples arrive (trainer.layouts) and announced when they changed.

A scope (a tenant, or the global adapter) is due once it has trainer.min_examples accepted or
edited examples and either trainer.retrain_after new ones since its last training, or any new
one and trainer.interval_s since then. One training runs at a time, in a thread, while feedback
keeps being ingested; when it is asked to stop, the trainer finishes the training in hand.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from copyflow.plugins.generators.spec import TransformersSpec
from copyflow.plugins.review import CopyReviewer
from copyflow.plugins.transport.connection import client_options
from copyflow.plugins.transport.health import Check, HealthServer, Status
from copyflow.plugins.transport.sink import new_producer
from copyflow.plugins.transport.source import GroupMembership, group_checks, next_offsets
from copyflow.plugins.transport.topics import ensure_topics
from copyflow.schemas import AdapterReleased, LayoutsReleased, Settings
from copyflow.schemas.settings import KafkaSettings, TrainerSettings, setting_error
from copyflow.trainer.bootstrap import bootstrap_examples
from copyflow.trainer.examples import GLOBAL, ExampleStore, folder_name
from copyflow.trainer.feedback import FeedbackIngestor, Ingested, SuggestionIndex
from copyflow.trainer.layouts import LayoutLedger, learn
from copyflow.trainer.registry import Registry
from copyflow.trainer.run import Trained, train_once

log = logging.getLogger(__name__)


class Schedule:
    """When each scope is due. What each scope was last trained on is kept in
    <store>/schedule.json, so a restarted trainer does not train again on the same data."""

    def __init__(
        self, settings: TrainerSettings, store: ExampleStore, clock: Callable[[], float]
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.path = store.root / "schedule.json"

    def _state(self) -> dict[str, dict[str, float]]:
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def due(self) -> list[str | None]:
        state = self._state()
        now = self.clock()
        found: list[str | None] = []
        for name in self.store.tenants():
            count = sum(e.trainable for e in self.store.load(name))
            last = state.get(name, {"examples": 0, "at": 0.0})
            new = count - last["examples"]
            if count < self.settings.min_examples or new <= 0:
                continue
            if new >= self.settings.retrain_after or now - last["at"] >= self.settings.interval_s:
                found.append(None if name == GLOBAL else name)
        return found

    def examples(self, tenant: str | None) -> int:
        return sum(e.trainable for e in self.store.load(tenant or GLOBAL))

    def trained(self, tenant: str | None, count: int) -> None:
        """Record a training on count examples (counted when it started: examples that came
        during it are still new)."""
        name = tenant or GLOBAL
        state = self._state()
        state[name] = {"examples": count, "at": self.clock()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1))
        temporary.replace(self.path)


ControlEvent = AdapterReleased | LayoutsReleased


async def publish(producer: AIOKafkaProducer, topic: str, event: ControlEvent) -> None:
    """Publish a control event, keyed by scope so that each scope's events stay in order."""
    await producer.send_and_wait(
        topic, event.model_dump_json().encode(), (event.tenant or "").encode()
    )


async def announce(kafka: KafkaSettings, topic: str, event: ControlEvent) -> None:
    producer = new_producer(kafka, client_id="copyflow-announce")
    await producer.start()
    try:
        await publish(producer, topic, event)
    finally:
        await producer.stop()


TrainFn = Callable[[str | None], Trained]


@dataclass(frozen=True)
class _Training:
    scope: str | None  # None: the global adapter
    counted: int  # its examples when it started
    task: asyncio.Future[Trained]


class Trainer:
    def __init__(
        self,
        settings: Settings,
        spec: TransformersSpec,
        reviewer: CopyReviewer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        trainer = settings.trainer
        self.store = ExampleStore(trainer.store_dir)
        self.index = SuggestionIndex(Path(trainer.store_dir).expanduser() / "suggestions.sqlite")
        self.ingestor = FeedbackIngestor(settings.topics, self.store, self.index)
        self.schedule = Schedule(trainer, self.store, clock)
        self.registry = Registry(trainer.registry_dir)
        self.train: TrainFn = lambda tenant: train_once(
            spec, trainer, tenant, reviewer, show_progress=False
        )
        self.stopping = asyncio.Event()
        self._unannounced: set[str | None] = set()
        self.ledger = LayoutLedger(trainer.registry_dir)
        self._layouts_due: set[str | None] = set()  # scopes with new examples since learned
        self.training: _Training | None = None  # the one training under way

    async def run(self) -> None:
        kafka, topics = self.settings.kafka, self.settings.topics
        await asyncio.to_thread(ensure_topics, kafka, topics)
        consumer = AIOKafkaConsumer(
            **client_options(kafka),
            group_id=self.settings.trainer.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        producer = new_producer(kafka, client_id="copyflow-announce")
        membership = GroupMembership()
        health = HealthServer(
            self.settings.metrics.host,
            self.settings.trainer.http_port,
            self._checks(consumer, membership),
        )
        if self.settings.trainer.http_port:
            try:
                await health.start()
            except OSError as exc:
                raise setting_error(("trainer", "http_port"), f"cannot serve HTTP: {exc}") from None
        await consumer.start()
        consumer.subscribe([topics.suggestions, topics.feedback], listener=membership)
        await producer.start()
        check_at = 0.0  # reading every scope's examples costs: only after news, or now and then
        try:
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                records = [record for part in batch.values() for record in part]
                if records:
                    ingested = await self._ingest(records, producer)
                    await consumer.commit(next_offsets(records))
                    if ingested.examples:
                        check_at = 0.0
                        if self.settings.trainer.layouts:
                            self._layouts_due.update(
                                None if name == GLOBAL else name for name in ingested.examples
                            )
                if records and self.settings.trainer.bootstrap_after:
                    await asyncio.to_thread(self._bootstrap_due)
                await self._update_layouts(producer)
                await self._announce_pending(producer)
                if self.training is not None and self.training.task.done():
                    await self._finished()
                    check_at = 0.0
                if self.training is None and time.monotonic() >= check_at:
                    check_at = time.monotonic() + 30
                    due = self.schedule.due()
                    if due:
                        scope = due[0]
                        counted = self.schedule.examples(scope)
                        log.info(
                            "training %s on %d examples", scope or "the global adapter", counted
                        )
                        task = asyncio.ensure_future(asyncio.to_thread(self.train, scope))
                        self.training = _Training(scope, counted, task)
            if self.training is not None:
                scope = self.training.scope
                log.info("stopping once the training of %s has finished", scope or "global")
                await asyncio.wait([self.training.task])
                await self._finished()
            await self._announce_pending(producer)
        finally:
            await health.stop()
            await consumer.stop()
            await producer.stop()
            self.index.close()

    def _checks(self, consumer: AIOKafkaConsumer, membership: GroupMembership) -> list[Check]:
        """/readyz: ready while the broker answers and the feedback group is joined; what it
        trains and what it has yet to announce are reported."""

        async def training() -> Status:
            if self.training is None:
                return Status(True, "idle")
            return Status(True, f"training {self.training.scope or 'the global adapter'}")

        async def announcements() -> Status:
            pending = sorted(scope or "global" for scope in self._unannounced)
            detail = f"not yet announced: {', '.join(pending)}" if pending else "none pending"
            return Status(not pending, detail)

        return [
            *group_checks(lambda: consumer, membership),
            Check("training", training, gating=False),
            Check("announcements", announcements, gating=False),
        ]

    async def _ingest(self, records: list[Any], producer: AIOKafkaProducer) -> Ingested:
        """Store the batch's examples, then dead-letter unusable feedback; the caller commits
        the batch only after both."""
        result = self.ingestor.ingest(records)
        deliveries: list[Awaitable[Any]] = []
        for record, letter in result.dead:
            log.warning("feedback dead letter: %s: %s", letter.kind, letter.reason[:200])
            headers = letter.headers(record.topic, record.partition, record.offset)
            deliveries.append(
                await producer.send(
                    self.settings.topics.feedback_dlq, record.value, record.key, headers=headers
                )
            )
        await asyncio.gather(*deliveries)
        if result.decisions or result.examples:
            log.info(
                "feedback: %d decisions, %d new examples %s, %d waiting for their suggestion",
                result.decisions,
                sum(result.examples.values()),
                dict(result.examples),
                self.index.parked(),
            )
        return result

    async def _finished(self) -> None:
        """Record the training that has just finished, and queue its release's announcement."""
        assert self.training is not None
        scope, counted, task = self.training.scope, self.training.counted, self.training.task
        self.training = None
        self.schedule.trained(scope, counted)
        try:
            trained = task.result()
        except Exception:
            log.exception("training %s failed", scope or "the global adapter")
            return
        log.info(
            "%s: %s (report %s)",
            scope or "global adapter",
            trained.verdict.reason,
            trained.report_dir / "report.md",
        )
        if trained.release:
            self._unannounced.add(scope)

    def _bootstrap_due(self) -> None:
        """Bootstrap each tenant, once, whose suggestions have shown trainer.bootstrap_after
        products: their copy as it stood becomes examples; the schedule then trains it."""
        marks = Path(self.settings.trainer.store_dir).expanduser() / "bootstrapped"
        for tenant, count in self.index.product_counts().items():
            mark = marks / f"{folder_name(tenant)}.json"
            if count < self.settings.trainer.bootstrap_after or mark.is_file():
                continue
            made = bootstrap_examples(self.index.products(tenant), tenant)
            added = self.store.add(made.examples)
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.write_text(json.dumps({"products": count, "summary": made.summary()}))
            self._layouts_due.add(tenant)
            log.info(
                "bootstrapped %s from its catalog: %s; %d stored", tenant, made.summary(), added
            )

    async def _update_layouts(self, producer: AIOKafkaProducer) -> None:
        """Learn the title layouts of the scopes with new examples again; announce those that
        changed. A scope whose announcement fails stays due and is tried again."""
        for tenant in list(self._layouts_due):
            event, _ = await asyncio.to_thread(
                learn, self.store, tenant, self.settings.trainer.layout_min_titles
            )
            if self.ledger.is_news(event):
                try:
                    await publish(producer, self.settings.topics.control, event)
                except KafkaError as exc:
                    log.error("cannot announce %s layouts yet: %s", tenant or "global", exc)
                    return
                self.ledger.record(event)
                log.info(
                    "announced %s title layouts %s (%d keys, from %d accepted titles)",
                    tenant or "global",
                    event.version,
                    len(event.layouts),
                    event.titles,
                )
            self._layouts_due.discard(tenant)

    async def _announce_pending(self, producer: AIOKafkaProducer) -> None:
        """Tell the workers about releases; one that cannot be told now is tried again."""
        for scope in list(self._unannounced):
            event = self.registry.announcement(scope)
            try:
                if event is not None:
                    await publish(producer, self.settings.topics.control, event)
            except KafkaError as exc:
                log.error("cannot announce %s yet (will retry): %s", scope or "global", exc)
                return
            self._unannounced.discard(scope)
            log.info("announced %s %s", scope or "global", event and event.adapter_version)
