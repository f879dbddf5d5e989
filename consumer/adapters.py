"""Which LoRA adapter and which title layouts make each tenant's copy, kept current from the
control topic.

A tenant's copy is made by its own adapter, else by the global one, else by the base model;
its composed titles follow its own learned layouts, else the global ones, else the default.
Every worker reads the whole control topic (no consumer group): at start it replays it to learn
the adapter each scope serves, then follows it. A switch loads the new adapter into every
generator process before any request names it; the one it replaces is unloaded once no batch
of events that was routed to it is still in hand (batches pin the adapters they use).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import mode
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import TypeAdapter, ValidationError

from copyflow.consumer.pipeline import Route
from copyflow.consumer.pool import AdapterLoadError, WorkerPool
from copyflow.plugins.generators.prompts import PROMPTS
from copyflow.plugins.layouts import TitleLayouts
from copyflow.plugins.transport.connection import client_options
from copyflow.schemas import AdapterReleased, LayoutsReleased
from copyflow.schemas.settings import KafkaSettings

log = logging.getLogger(__name__)


class IncompatibleAdapter(ValueError):
    pass


def adapter_name(tenant: str | None, version: str) -> str:
    # peft keeps adapters in module dicts, whose keys cannot hold dots; tenants may.
    digest = hashlib.sha256(f"{tenant or ''}\x1f{version}".encode()).hexdigest()[:16]
    return f"adapter_{digest}"


@dataclass
class AdapterStats:
    switches: int = 0
    refused: int = 0  # releases not applied: incompatible, unloadable or malformed
    layout_switches: int = 0


ControlEvent = AdapterReleased | LayoutsReleased
# The control topic's events, told apart by their type; one without a type is an adapter
# release, as all were before layouts.
_CONTROL = TypeAdapter[ControlEvent](ControlEvent)


def parse_control(raw: bytes) -> ControlEvent:
    """Raises ValidationError when raw is no control event."""
    return _CONTROL.validate_json(raw)


class AdapterRouter:
    def __init__(self, pool: WorkerPool, stats: AdapterStats | None = None) -> None:
        self.pool = pool
        self.stats = stats or AdapterStats()
        self._routes: dict[str | None, Route] = {}
        self._pins: Counter[str] = Counter()  # adapter name -> batches in hand using it
        self._retired: set[str] = set()  # replaced, unloaded when no longer pinned
        self._layouts: dict[str | None, TitleLayouts] = {}

    def route(self, tenant: str) -> Route | None:
        """The adapter for a tenant's requests: its own, else the global one, else None."""
        return self._routes.get(tenant) or self._routes.get(None)

    def layouts(self, tenant: str) -> TitleLayouts | None:
        """The title layouts for a tenant's copy: its own, else the global ones, else None."""
        return self._layouts.get(tenant) or self._layouts.get(None)

    def apply_layouts(self, event: LayoutsReleased) -> None:
        """Switch the event's scope to its layouts (none: back to the default layout)."""
        layouts = TitleLayouts({key: tuple(order) for key, order in event.layouts.items()})
        current = self._layouts.get(event.tenant)
        if (current or TitleLayouts()).version == layouts.version:
            return
        if layouts:
            self._layouts[event.tenant] = layouts
        else:
            self._layouts.pop(event.tenant, None)
        self.stats.layout_switches += 1
        log.info(
            "%s: title layouts %s (%d keys, from %d accepted titles)",
            event.tenant or "every tenant without its own",
            layouts.version if layouts else "default",
            len(layouts.layouts),
            event.titles,
        )

    def pin(self, routes: Iterable[Route | None]) -> list[str]:
        """Keep these adapters loaded until unpin(): call in the same step as route(), with
        no await in between, so a switch cannot unload them first."""
        names = sorted({route.name for route in routes if route is not None})
        self._pins.update(names)
        return names

    def unpin(self, names: Iterable[str]) -> None:
        self._pins.subtract(names)
        self._unload_retired()

    def _unload_retired(self) -> None:
        serving = {route.name for route in self._routes.values()}
        for name in list(self._retired):
            if name in serving:
                self._retired.discard(name)  # serving again (a rollback to it)
            elif self._pins[name] <= 0:
                self._retired.discard(name)
                self.pool.unload_adapter(name)

    def serving(self) -> dict[str | None, str]:
        return {tenant: route.version for tenant, route in self._routes.items()}

    async def apply(self, event: AdapterReleased) -> None:
        """Switch the event's scope to its adapter version. Raises IncompatibleAdapter or
        AdapterLoadError, and then the scope keeps what it had. Going back to the base model
        is always possible."""
        base = self.pool.model_info
        scope = event.tenant or "the global scope"
        wanted = (event.base_model, event.base_revision)
        if event.adapter_version and wanted != (base.base, base.revision):
            raise IncompatibleAdapter(
                f"adapter {event.adapter_version} of {scope} was trained for {wanted}, this "
                f"worker serves {(base.base, base.revision)}"
            )
        if event.adapter_version and event.prompt_version not in PROMPTS:
            raise IncompatibleAdapter(
                f"adapter {event.adapter_version} of {scope} was trained with prompt "
                f"{event.prompt_version!r}, which this worker does not know"
            )
        current = self._routes.get(event.tenant)
        route = None
        if event.adapter_version is not None:
            version = event.adapter_version
            route = Route(
                adapter_name(event.tenant, version), event.tenant, version, event.prompt_version
            )
            if current == route:
                return
            await self.pool.load_adapter(route.name, event.location, event.prompt_version)
            self._routes[event.tenant] = route
        elif current is None:
            return
        else:
            del self._routes[event.tenant]
        self.stats.switches += 1
        log.info(
            "%s now served by %s",
            event.tenant or "every tenant without its own adapter",
            f"adapter {event.adapter_version}" if route else "the base model",
        )
        if current is not None:
            self._retired.add(current.name)
        self._unload_retired()


class ControlListener(mode.Service):
    """Replays the control topic at start (before the worker consumes products), then
    follows it."""

    def __init__(self, kafka: KafkaSettings, topic: str, router: AdapterRouter) -> None:
        super().__init__()
        self.kafka = kafka
        self.topic = topic
        self.router = router
        self._consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        consumer = AIOKafkaConsumer(
            **client_options(self.kafka), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        self._consumer = consumer
        await consumer.topics()  # loads the metadata of every topic, this one included
        partitions = [
            TopicPartition(self.topic, p) for p in consumer.partitions_for_topic(self.topic) or []
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        latest: dict[tuple[str, str | None], ControlEvent] = {}
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            for event in await self._next_events(500):
                latest[(event.type, event.tenant)] = event
        for event in latest.values():
            await self._apply(event)
        log.info("adapters in use: %s", self.router.serving() or "none (the base model)")

    @mode.Service.task
    async def _follow(self) -> None:
        while not self.should_stop:
            for event in await self._next_events(1000):
                await self._apply(event)

    async def _next_events(self, timeout_ms: int) -> list[ControlEvent]:
        """The readable control events of one fetch, in order per partition."""
        assert self._consumer is not None
        batch = await self._consumer.getmany(timeout_ms=timeout_ms)
        events = [self._parse(record.value) for records in batch.values() for record in records]
        return [event for event in events if event is not None]

    def _parse(self, raw: bytes | None) -> ControlEvent | None:
        try:
            return parse_control(raw or b"")
        except ValidationError as exc:
            self.router.stats.refused += 1
            log.error("ignored a malformed control event: %s", str(exc).splitlines()[0])
            return None

    async def _apply(self, event: ControlEvent) -> None:
        if isinstance(event, LayoutsReleased):
            self.router.apply_layouts(event)
            return
        try:
            await self.router.apply(event)
        except (IncompatibleAdapter, AdapterLoadError) as exc:
            self.router.stats.refused += 1
            log.error("adapter release not applied: %s", exc)

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
