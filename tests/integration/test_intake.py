"""Reading a batch's records (consumer.intake) against a real Redis: what a format needs from
earlier batches (a product's previous content, the event ids handled) and what a deletion
forgets."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence

import pytest

from copyflow.consumer.intake import Intake, take_in
from copyflow.consumer.pipeline import InputFormats, Pipeline
from copyflow.plugins.catalog import (
    CatalogFormat,
    CatalogRecord,
    Decoded,
    PartialEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.formats.common import product_event
from copyflow.schemas import ModelInfo
from tests.integration.test_cache import make_cache

MODEL = ModelInfo(base="tiny", revision="r", prompt_version="v3")


class Rows(CatalogFormat):
    """Test format: {"id", "title", "description"} rows; "?" marks a field left out, "deleted"
    a deletion. Redelivers (dedupe) and leaves fields out (keeps content), like real sources."""

    name = "rows"
    dedupe_events = True
    keeps_content = True

    def decode(self, record: CatalogRecord) -> Sequence[Decoded]:
        row = json.loads(record.value or b"")
        if row.get("deleted"):
            return (ProductDeleted(row["event"], "shop", row["id"], "rows"),)
        left_out = frozenset(k for k in ("title", "description") if row[k] == "?")
        product = {"product_id": row["id"], **{k: row[k] for k in ("title", "description")}}
        product.update({k: "-" for k in left_out})
        event = product_event(
            id=row["event"],
            updated=True,
            source="rows",
            time="2026-01-01T00:00:00Z",
            tenant="shop",
            product=product,
        )
        return (PartialEvent(event, left_out),) if left_out else (event,)


def row(event: str, product: str, title: str = "?", description: str = "?") -> CatalogRecord:
    value = {"event": event, "id": product, "title": title, "description": description}
    return CatalogRecord(json.dumps(value).encode())


def gone(event: str, product: str) -> CatalogRecord:
    return CatalogRecord(json.dumps({"event": event, "id": product, "deleted": True}).encode())


PIPELINE = Pipeline(InputFormats.only(Rows()), 1 << 20)


def run(coroutine: object) -> Intake:
    result = asyncio.run(coroutine)  # type: ignore[arg-type]
    assert isinstance(result, Intake)
    return result


@pytest.fixture
def prefix() -> str:
    return f"intake-{uuid.uuid4().hex[:8]}"


def titles(intake: Intake) -> list[tuple[str, str]]:
    return [(job.event.data.title, job.event.data.description) for job in intake.jobs]


def test_left_out_fields_come_from_this_batch_then_from_redis_and_a_deletion_forgets(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> list[Intake]:
        cache = make_cache(redis_url, prefix)
        first = await take_in(
            [row("e1", "p1", "Oak Table", "Solid oak."), row("e2", "p1", description="Oiled oak.")],
            PIPELINE,
            cache,
            None,
        )
        await cache.keep_content([p for _, p in first.contents.values()], ["shop"])
        # A later batch: the title comes from Redis.
        second = await take_in([row("e3", "p1", description="Waxed oak.")], PIPELINE, cache, None)
        await cache.forget([("shop", "p1")])
        # After the deletion nothing is known: a dead letter saying what to do.
        third = await take_in([row("e4", "p1", description="Any.")], PIPELINE, cache, None)
        await cache.client.aclose()
        return [first, second, third]

    first, second, third = asyncio.run(scenario())
    assert titles(first) == [("Oak Table", "Solid oak."), ("Oak Table", "Oiled oak.")]
    assert titles(second) == [("Oak Table", "Waxed oak.")]
    assert titles(third) == []
    ((_, letter),) = third.dead
    assert letter.kind == "unavailable"
    assert "'p1'" in letter.reason and "title" in letter.reason


def test_a_deletion_in_the_batch_hides_content_kept_before_it(redis_url: str, prefix: str) -> None:
    async def scenario() -> Intake:
        cache = make_cache(redis_url, prefix)
        records = [row("e1", "p1", "Oak Table", "Solid."), gone("e2", "p1"), row("e3", "p1")]
        intake = await take_in(records, PIPELINE, cache, None)
        await cache.client.aclose()
        return intake

    intake = asyncio.run(scenario())
    assert [index for index, _ in intake.deleted] == [1]
    assert [(index, letter.kind) for index, letter in intake.dead] == [(2, "unavailable")]
    # Content kept for the product before its deletion is not kept.
    assert not intake.after_last_deletion(("shop", "p1"), 0)


def test_redelivered_events_are_dropped_in_the_batch_and_after_it(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> list[Intake]:
        cache = make_cache(redis_url, prefix)
        same = row("e1", "p1", "Oak Table", "Solid.")
        first = await take_in(
            [same, same, row("e2", "p2", "Pine Shelf", "Pine.")], PIPELINE, cache, None
        )
        await cache.mark_handled(first.handled)
        second = await take_in([same, row("e3", "p3", "Ash Stool", "Ash.")], PIPELINE, cache, None)
        await cache.client.aclose()
        return [first, second]

    first, second = asyncio.run(scenario())
    assert [j.event.id for j in first.jobs] == ["e1", "e2"] and first.duplicates == 1
    assert sorted(first.handled) == [("shop", "e1"), ("shop", "e2")]
    assert [j.event.id for j in second.jobs] == ["e3"] and second.duplicates == 1


def test_a_product_made_again_after_its_deletion_in_one_batch_is_never_skipped(
    redis_url: str, prefix: str
) -> None:
    async def scenario() -> tuple[list[bool], Intake]:
        cache = make_cache(redis_url, prefix)
        made = await take_in([row("e1", "p1", "Oak Table", "Solid.")], PIPELINE, cache, None)
        await cache.remember(made.jobs, MODEL)
        records = [gone("e2", "p1"), row("e3", "p1", "Oak Table", "Solid.")]
        again = await take_in(records, PIPELINE, cache, None)
        unchanged = await cache.unchanged(again.jobs, MODEL)
        await cache.client.aclose()
        return unchanged, again

    unchanged, again = asyncio.run(scenario())
    assert unchanged == [True]  # the state the deletion clears is still there ...
    assert again.fresh == {0}  # ... so the job is marked to be made anyway
