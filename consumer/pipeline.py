"""The pipeline's steps for one event, free of Kafka: decode, generate, check, build.

The stream processor (consumer.app) and `copyflow generate` run exactly these steps.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import NamedTuple

from copyflow.consumer import identity
from copyflow.plugins.catalog import (
    CatalogFormat,
    CatalogRecord,
    Decoded,
    InvalidEvent,
    PartialEvent,
    ProductDeleted,
)
from copyflow.plugins.channels import UnknownChannel, get_channel
from copyflow.plugins.generators import GenerationRequest, GenerationResult, Generator
from copyflow.plugins.layouts import TitleLayouts
from copyflow.plugins.review import CopyReviewer, Reviewed
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import ModelInfo, Product, ProductEvent, Suggestion, TitleSlot

log = logging.getLogger(__name__)

GLOBAL_LABEL = "global"  # ModelInfo.adapter for the adapter every tenant shares


@dataclass(frozen=True)
class Route:
    """A served LoRA adapter."""

    name: str  # what the generator processes call it
    tenant: str | None  # None: the global adapter
    version: str
    prompt_version: str | None = None  # the prompt it was trained with; None: the generator's


@dataclass(frozen=True)
class Job:
    """One suggestion to make: an event and one of its target channels, the adapter that
    makes the tenant's copy (None: the base model) and the title layouts learned for the
    tenant (None: the default layout)."""

    event: ProductEvent
    channel: str
    route: Route | None = None
    layouts: TitleLayouts | None = None

    @property
    def layout(self) -> tuple[TitleSlot, ...] | None:
        """The learned layout for this product's composed title."""
        return self.layouts.for_product(self.event.data) if self.layouts else None

    @property
    def request(self) -> GenerationRequest:
        adapter = self.route.name if self.route else None
        return GenerationRequest(product=self.event.data, channel=self.channel, adapter=adapter)

    def model_info(self, base: ModelInfo) -> ModelInfo:
        """The generator's model info base, naming the adapter that makes this job's copy."""
        return self._made(base).model

    def suggestion_id(self, base: ModelInfo) -> uuid.UUID:
        """The id of the suggestion this job makes with the generator's model base."""
        return self._made(base).suggestion_id

    def suggestion_key(self, base: ModelInfo) -> str:
        """suggestion_id as text, as headers and the unchanged-content skip carry it."""
        return self._made(base).suggestion_key

    def recipe_digest(self, base: ModelInfo) -> str:
        """The same recipe as the suggestion id's, as the cache names it."""
        return self._made(base).recipe_digest

    def _made(self, base: ModelInfo) -> _Made:
        # Kept: the cache, the skip, the build and the publish each need these, and together
        # they cost more than the rest of a cache hit's per-job work.
        made: _Made | None = self.__dict__.get("_made_with")
        if made is None or made.base is not base:
            model = base if self.route is None else _with_adapter(base, self.route)
            if self.layouts:
                model = model.model_copy(update={"layouts_version": self.layouts.version})
            recipe = identity.recipe(self.event.tenant, self.content_hash, self.channel, model)
            made_id = identity.suggestion_id(recipe)
            made = _Made(base, model, made_id, str(made_id), identity.recipe_digest(recipe))
            self.__dict__["_made_with"] = made  # as cached_property sets it on a frozen class
        return made

    @cached_property
    def content_hash(self) -> str:
        return self.event.data.content_hash()


class _Made(NamedTuple):
    base: ModelInfo
    model: ModelInfo
    suggestion_id: uuid.UUID
    suggestion_key: str
    recipe_digest: str


@lru_cache(maxsize=1024)
def _with_adapter(base: ModelInfo, route: Route) -> ModelInfo:
    label = GLOBAL_LABEL if route.tenant is None else f"tenant:{route.tenant}"
    update = {"adapter": label, "adapter_version": route.version}
    if route.prompt_version is not None:  # the adapter's own prompt makes its copy
        update["prompt_version"] = route.prompt_version
    return base.model_copy(update=update)


@lru_cache(maxsize=64)
def _with_checks(model: ModelInfo, checks: str) -> ModelInfo:
    return model.model_copy(update={"checks": checks})


def filled(partial: PartialEvent, before: Product) -> ProductEvent:
    """The partial event with the fields its source left out taken from the product's
    previous content."""
    event = partial.event
    update = {name: getattr(before, name) for name in partial.unavailable}
    return event.model_copy(update={"data": event.data.model_copy(update=update)})


def unavailable(partial: PartialEvent) -> DeadLetter:
    data = partial.event.data
    fields = ", ".join(sorted(partial.unavailable))
    return DeadLetter(
        "unavailable",
        f"product {data.product_id!r} (tenant {partial.event.tenant!r}): the source left out "
        f"{fields} (unchanged) and no earlier content of the product is known; send its whole "
        "row again (a snapshot, or an update that sets every field) to make its copy",
    )


def jobs_for(
    event: ProductEvent, route: Route | None = None, layouts: TitleLayouts | None = None
) -> list[Job]:
    return [Job(event, channel, route, layouts) for channel in dict.fromkeys(event.data.channels)]


def generate_splitting(
    generator: Generator, requests: Sequence[GenerationRequest]
) -> list[GenerationResult | DeadLetter]:
    """Generate for a batch; when the batch fails (out of memory, or any error), split it and
    retry the halves, so that one bad request becomes one dead letter and its neighbours
    still get their copy."""
    if not requests:
        return []
    try:
        return list(generator.generate(requests))
    except Exception as exc:
        if len(requests) == 1:
            return [DeadLetter("generation", f"{type(exc).__name__}: {exc}")]
        log.warning(
            "batch of %d failed (%s: %s); splitting it", len(requests), type(exc).__name__, exc
        )
        _release_accelerator_memory()
    middle = len(requests) // 2
    return generate_splitting(generator, requests[:middle]) + generate_splitting(
        generator, requests[middle:]
    )


def _release_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class InputFormats:
    """Which format reads each input topic; a record from any other topic (a file, a replay
    of a topic without a format of its own) is read in the default format."""

    def __init__(self, default: CatalogFormat, by_topic: Mapping[str, CatalogFormat]) -> None:
        self.default = default
        self.by_topic = dict(by_topic)

    @classmethod
    def only(cls, fmt: CatalogFormat) -> InputFormats:
        return cls(fmt, {})

    def of(self, topic: str) -> CatalogFormat:
        return self.by_topic.get(topic, self.default)

    @property
    def topics(self) -> list[str]:
        return list(self.by_topic)


class Pipeline:
    """Decode and build: the steps around generation, the same in the worker and the CLI."""

    def __init__(
        self,
        formats: InputFormats,
        max_event_bytes: int,
        reviewer: CopyReviewer | None = None,
    ) -> None:
        self.formats = formats
        self.max_event_bytes = max_event_bytes
        self.reviewer = reviewer or CopyReviewer()

    def served_model(self, generator: ModelInfo) -> ModelInfo:
        """The generator's model info with these checks named: the base of every job's
        identity. The same object for the same generator, so jobs keep what they derived."""
        return _with_checks(generator, self.reviewer.fingerprint)

    def decode(self, record: CatalogRecord) -> Sequence[Decoded] | DeadLetter:
        """Step: a record, read by its topic's format, to what it says (product events,
        deletions, partial events; maybe nothing), or the dead letter saying why not."""
        size = len(record.value or b"") + len(record.key or b"")
        size += sum(len(name) + len(value) for name, value in record.headers)
        if size > self.max_event_bytes:
            return DeadLetter(
                "oversize",
                f"{size} bytes exceeds worker.max_event_bytes={self.max_event_bytes}",
            )
        fmt = self.formats.of(record.topic)
        try:
            decoded = fmt.decode(record)
        except InvalidEvent as exc:
            return DeadLetter(exc.kind, exc.reason)
        except Exception as exc:  # a format's bug is that record's dead letter, not a crash
            log.exception("format %s failed on a record", fmt.name)
            return DeadLetter("format_error", f"format {fmt.name}: {type(exc).__name__}: {exc}")
        for item in decoded:
            if isinstance(item, ProductDeleted):
                continue
            event = item.event if isinstance(item, PartialEvent) else item
            for channel in event.data.channels:
                try:
                    get_channel(channel)
                except UnknownChannel as exc:
                    return DeadLetter("schema", f"data.channels: {exc.args[0]}")
        return decoded

    def check(self, job: Job, result: GenerationResult) -> Reviewed:
        """Step: check the generated copy for its channel (repair once, else the template)."""
        return self.reviewer.review(
            job.event.data,
            get_channel(job.channel),
            result.title,
            result.description,
            result.parse_error,
            job.layout,
            learned=job.route is not None,
        )

    def check_all(
        self, jobs: Sequence[Job], results: Sequence[GenerationResult | DeadLetter]
    ) -> list[Reviewed | DeadLetter]:
        checked: list[Reviewed | DeadLetter] = []
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, DeadLetter):
                checked.append(result)
                continue
            try:
                checked.append(self.check(job, result))
            except ValueError as exc:  # pydantic's ValidationError too
                checked.append(self._unbuildable(job, exc))
        return checked

    def build(
        self,
        job: Job,
        copy: Reviewed | GenerationResult,
        model: ModelInfo,
        latency_ms: float,
        cache_hit: bool = False,
        created_at: datetime | None = None,
    ) -> Suggestion:
        """Step: the Suggestion for checked copy (generated copy is checked first). model is
        the generator's; the suggestion names the job's adapter too."""
        reviewed = self.check(job, copy) if isinstance(copy, GenerationResult) else copy
        product = job.event.data
        return Suggestion(
            suggestion_id=job.suggestion_id(model),
            product_id=product.product_id,
            tenant=job.event.tenant,
            source_event_id=job.event.id,
            channel=job.channel,
            title=reviewed.title,
            description=reviewed.description,
            model=job.model_info(model),
            checks=reviewed.checks,
            fallback_used=reviewed.fallback_used,
            improved=reviewed.improved,
            title_source=reviewed.title_source,
            description_source=reviewed.description_source,
            reason=reviewed.reason,
            scores=reviewed.scores,
            cache_hit=cache_hit,
            latency_ms=latency_ms,
            content_hash=job.content_hash,
            input=product,
            created_at=created_at or datetime.now(UTC),
        )

    def build_all(
        self,
        jobs: Sequence[Job],
        results: Sequence[Reviewed | GenerationResult | DeadLetter],
        model: ModelInfo,
        latency_ms: float,
        cache_hits: Sequence[bool] | None = None,
    ) -> list[Suggestion | DeadLetter]:
        hits = cache_hits if cache_hits is not None else [False] * len(jobs)
        created_at = datetime.now(UTC)  # one batch, one moment
        outcomes: list[Suggestion | DeadLetter] = []
        for job, result, hit in zip(jobs, results, hits, strict=True):
            if isinstance(result, DeadLetter):
                outcomes.append(result)
                continue
            try:
                outcomes.append(
                    self.build(job, result, model, latency_ms, cache_hit=hit, created_at=created_at)
                )
            except ValueError as exc:  # pydantic's ValidationError too
                outcomes.append(self._unbuildable(job, exc))
        return outcomes

    @staticmethod
    def _unbuildable(job: Job, exc: ValueError) -> DeadLetter:
        # One product's unbuildable suggestion must not stop the stream (a crash would replay
        # it forever): it becomes a dead letter with the reason.
        log.exception("cannot build a suggestion for %s", job.event.data.product_id)
        return DeadLetter("check", f"{type(exc).__name__}: {exc}")

    def run(self, generator: Generator, jobs: Sequence[Job]) -> list[Suggestion | DeadLetter]:
        """Generate in this process and build (blocking; for `copyflow generate`)."""
        started = time.perf_counter()
        results = generate_splitting(generator, [job.request for job in jobs])
        latency_ms = (time.perf_counter() - started) * 1000
        return self.build_all(jobs, results, self.served_model(generator.model_info), latency_ms)
