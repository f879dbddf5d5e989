"""Step 1 of a batch: what its records say, read by each topic's format, made ready for the
rest of the protocol (consumer.app): product events as jobs, deletions, dead letters.

Formats may need what earlier events left behind: a partial event (fields its source left out)
takes them from the product's previous content, kept in this batch or in Redis; a format whose
source redelivers has its handled event ids dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from copyflow.consumer.adapters import AdapterRouter
from copyflow.consumer.cache import CopyCache
from copyflow.consumer.pipeline import Job, Pipeline, filled, jobs_for, unavailable
from copyflow.plugins.catalog import CatalogRecord, PartialEvent, ProductDeleted
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import Product, ProductEvent

ProductRef = tuple[str, str]  # (tenant, product id)


@dataclass
class Intake:
    """A batch's records as the protocol's inputs; each output names its record's index."""

    jobs: list[Job] = field(default_factory=list)
    job_records: list[int] = field(default_factory=list)
    # Jobs of products deleted earlier in this batch: never skipped as unchanged (the skip
    # state the deletion clears is only cleared once the batch is out).
    fresh: set[int] = field(default_factory=set)
    deleted: list[tuple[int, ProductDeleted]] = field(default_factory=list)
    dead: list[tuple[int, DeadLetter]] = field(default_factory=list)
    handled: list[ProductRef] = field(default_factory=list)  # (tenant, event id) to remember
    contents: dict[tuple[str, str, str], tuple[int, Product]] = field(default_factory=dict)
    other_tenants: int = 0
    duplicates: int = 0  # redelivered events dropped
    ignored: int = 0  # records that say nothing about product copy

    def after_last_deletion(self, ref: ProductRef, index: int) -> bool:
        """Is the record at index later than this batch's last deletion of the product?
        (Asked once the intake is complete.)"""
        return index > self._last_deletion.get(ref, -1)

    @cached_property
    def _last_deletion(self) -> dict[ProductRef, int]:
        return {(d.tenant, d.product_id): index for index, d in self.deleted}


@dataclass(frozen=True)
class _Pending:
    index: int
    event: ProductEvent
    unavailable: frozenset[str]
    keeps_content: bool


async def take_in(
    records: Sequence[CatalogRecord],
    pipeline: Pipeline,
    cache: CopyCache | None,
    router: AdapterRouter | None,
    tenant: str | None = None,
) -> Intake:
    """Decode the records and turn what they say into jobs, deletions and dead letters.
    tenant: only this tenant's events (the others are counted)."""
    intake = Intake()
    pending: list[_Pending | ProductDeleted] = []
    dedupe: list[tuple[int, ProductRef]] = []
    for index, record in enumerate(records):
        fmt = pipeline.formats.of(record.topic)
        decoded = pipeline.decode(record)
        if isinstance(decoded, DeadLetter):
            intake.dead.append((index, decoded))
            continue
        if not decoded:
            intake.ignored += 1
        for item in decoded:
            if isinstance(item, ProductDeleted):
                if tenant is not None and item.tenant != tenant:
                    intake.other_tenants += 1
                else:
                    intake.deleted.append((index, item))
                    pending.append(item)  # content kept before it is not used after it
                continue
            event = item.event if isinstance(item, PartialEvent) else item
            if tenant is not None and event.tenant != tenant:
                intake.other_tenants += 1
                continue
            missing = item.unavailable if isinstance(item, PartialEvent) else frozenset()
            pending.append(_Pending(index, event, missing, fmt.keeps_content))
            if fmt.dedupe_events:
                dedupe.append((index, (event.tenant, event.id)))

    first_deleted: dict[ProductRef, int] = {}
    for index, gone in reversed(intake.deleted):
        first_deleted[gone.tenant, gone.product_id] = index
    dropped = await _redelivered(dedupe, cache, intake)
    previous = await _previous(pending, cache)
    latest: dict[tuple[str, str, str], Product | None] = {}
    events: list[tuple[int, ProductEvent]] = []
    for step in pending:
        if isinstance(step, ProductDeleted):
            for key in [k for k in latest if k[:2] == (step.tenant, step.product_id)]:
                latest[key] = None
            continue
        if step.index in dropped:
            continue
        event = step.event
        key = (event.tenant, event.data.product_id, event.data.locale)
        if step.unavailable:
            before = latest[key] if key in latest else previous.get(key)
            if before is None:
                intake.dead.append((step.index, unavailable(PartialEvent(event, step.unavailable))))
                continue
            event = filled(PartialEvent(event, step.unavailable), before)
        latest[key] = event.data
        if step.keeps_content:
            intake.contents[key] = (step.index, event.data)
        events.append((step.index, event))

    for index, event in events:
        route = router.route(event.tenant) if router else None
        layouts = router.layouts(event.tenant) if router else None
        ref = (event.tenant, event.data.product_id)
        again = ref in first_deleted and first_deleted[ref] < index
        for job in jobs_for(event, route, layouts):
            if again:
                intake.fresh.add(len(intake.jobs))
            intake.jobs.append(job)
            intake.job_records.append(index)
    return intake


async def _redelivered(
    dedupe: list[tuple[int, ProductRef]], cache: CopyCache | None, intake: Intake
) -> set[int]:
    """The records whose event id was handled before (in an earlier batch, or by an earlier
    record of this one); the ids of the others are to be remembered."""
    first: dict[ProductRef, int] = {}
    for index, ref in dedupe:
        first.setdefault(ref, index)
    refs = list(first)
    before = await cache.handled(refs) if cache is not None else [False] * len(refs)
    seen_before = {ref for ref, handled in zip(refs, before, strict=True) if handled}
    dropped = {index for index, ref in dedupe if ref in seen_before or first[ref] != index}
    intake.handled = [ref for ref in refs if ref not in seen_before]
    intake.duplicates = len(dropped)
    return dropped


async def _previous(
    pending: Sequence[_Pending | ProductDeleted], cache: CopyCache | None
) -> dict[tuple[str, str, str], Product]:
    """The content kept in Redis for the products of the batch's partial events."""
    wanted = list(
        dict.fromkeys(
            (p.event.tenant, p.event.data.product_id, p.event.data.locale)
            for p in pending
            if isinstance(p, _Pending) and p.unavailable
        )
    )
    if cache is None or not wanted:
        return {}
    found = await cache.previous(wanted)
    return {
        key: Product.model_validate_json(value)
        for key, value in zip(wanted, found, strict=True)
        if value is not None
    }
