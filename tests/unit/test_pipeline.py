from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from copyflow.consumer.cache import cache_key
from copyflow.consumer.pipeline import Job, Pipeline, Route, jobs_for
from copyflow.plugins.catalog import CatalogRecord
from copyflow.plugins.channels import get_channel
from copyflow.plugins.generators import GenerationRequest, GenerationResult, get_prompt
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.review import CopyReviewer, Reviewed
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import ModelInfo, ProductEvent, Suggestion
from tests.harness import COPYFLOW_INPUT, product_event


@pytest.fixture(scope="module")
def generator(tiny_model_dir: Path) -> TransformersGenerator:
    return TransformersGenerator(
        str(tiny_model_dir), get_prompt("v1"), device="cpu", max_new_tokens=8
    )


class FailsOnProduct:
    """Wraps the real generator; any batch holding the poisoned product raises, like an OOM."""

    def __init__(self, inner: TransformersGenerator, poisoned: str) -> None:
        self.inner = inner
        self.poisoned = poisoned
        self.calls: list[int] = []

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append(len(requests))
        if any(r.product.product_id == self.poisoned for r in requests):
            raise RuntimeError("CUDA out of memory (injected)")
        return self.inner.generate(requests)


def event(i: int, **product: object) -> ProductEvent:
    return ProductEvent.model_validate(product_event(i, **product))


def test_a_failing_batch_is_split_until_one_dead_letter_remains(
    generator: TransformersGenerator,
) -> None:
    failing = FailsOnProduct(generator, poisoned="p-2")
    pipeline = Pipeline(COPYFLOW_INPUT, max_event_bytes=1 << 20)
    jobs = [job for i in range(4) for job in jobs_for(event(i))]
    outcomes = pipeline.run(failing, jobs)
    assert failing.calls == [4, 2, 2, 1, 1]  # halves, then the failing half's halves
    assert [type(o).__name__ for o in outcomes] == [
        "Suggestion",
        "Suggestion",
        "DeadLetter",
        "Suggestion",
    ]
    letter = outcomes[2]
    assert isinstance(letter, DeadLetter)
    assert letter.kind == "generation" and "out of memory" in letter.reason


def test_one_job_per_distinct_channel() -> None:
    jobs = jobs_for(event(1, channels=["amazon", "ebay", "amazon"]))
    assert [job.channel for job in jobs] == ["amazon", "ebay"]


def build(generator: TransformersGenerator, result: GenerationResult) -> Suggestion:
    pipeline = Pipeline(COPYFLOW_INPUT, max_event_bytes=1 << 20)
    return pipeline.build(Job(event(1), "default"), result, generator.model_info, latency_ms=5.0)


def test_parsed_copy_is_judged_with_the_other_candidates(generator: TransformersGenerator) -> None:
    title = "Testbrand Test Product 1 Cotton Blue Shirt"
    result = GenerationResult("...", title, "A blue cotton shirt from Testbrand.", None, 50, 20)
    suggestion = build(generator, result)
    assert suggestion.title == title
    assert suggestion.improved and suggestion.title_source in ("composed", "model")
    assert not [c for c in suggestion.checks if c.name.startswith("model ")]
    assert suggestion.input.product_id == "p-1"


def test_a_model_title_that_drops_facts_loses(generator: TransformersGenerator) -> None:
    result = GenerationResult("...", "Testbrand Shirt", "A shirt.", None, 50, 20)
    suggestion = build(generator, result)
    assert suggestion.title == "Testbrand Test Product 1 Cotton Blue Shirt"
    assert suggestion.fallback_used
    faults = {c.name for c in suggestion.checks if c.name.startswith("model title:")}
    assert "model title:numbers_kept" in faults


def test_unparseable_or_degenerate_copy_falls_back(generator: TransformersGenerator) -> None:
    unparsed = build(generator, GenerationResult("garbage", None, None, "no TITLE: line", 50, 8))
    assert unparsed.fallback_used
    assert unparsed.title == "Testbrand Test Product 1 Cotton Blue Shirt"
    assert [c.name for c in unparsed.checks if not c.passed] == ["parsed"]

    looping = GenerationResult("...", "Shirt", "blue blue blue blue blue blue blue", None, 50, 8)
    degenerate = build(generator, looping)
    assert degenerate.fallback_used
    assert "blue blue" not in degenerate.description


def test_an_adapter_served_with_its_own_prompt_names_it_in_id_and_cache_key() -> None:
    """A job routed to an adapter trained with the short prompt s1 is made with s1: its model
    info says so, and its suggestion id and cache key differ from the same adapter version's
    served with the generator's prompt."""
    base = ModelInfo(base="m", revision="r1", prompt_version="v3")
    event = ProductEvent.model_validate(product_event(1))
    own = Job(event, "default", Route("adapter_1", "tenant-a", "v0001", "s1"))
    shared = Job(event, "default", Route("adapter_1", "tenant-a", "v0001"))
    assert own.model_info(base).prompt_version == "s1"
    assert shared.model_info(base).prompt_version == "v3"
    assert own.suggestion_id(base) != shared.suggestion_id(base)
    assert cache_key("p", own, base) != cache_key("p", shared, base)
    again = Job(event, "default", Route("adapter_1", "tenant-a", "v0001", "s1"))
    assert again.suggestion_id(base) == own.suggestion_id(base)


def test_oversized_and_empty_messages_are_dead_letters(generator: TransformersGenerator) -> None:
    pipeline = Pipeline(COPYFLOW_INPUT, max_event_bytes=2048)
    oversized = pipeline.decode(CatalogRecord(b"{" + b" " * 4096 + b"}"))
    assert isinstance(oversized, DeadLetter) and oversized.kind == "oversize"
    empty = pipeline.decode(CatalogRecord(None))
    assert isinstance(empty, DeadLetter) and empty.kind == "decode"


def test_an_unknown_channel_is_a_dead_letter_naming_the_known_ones() -> None:
    pipeline = Pipeline(COPYFLOW_INPUT, max_event_bytes=1 << 20)
    raw = json.dumps(product_event(1, channels=["amazon", "etsy"])).encode()
    letter = pipeline.decode(CatalogRecord(raw))
    assert isinstance(letter, DeadLetter) and letter.kind == "schema"
    assert "data.channels: unknown channel 'etsy'; known: amazon, default" in letter.reason


@pytest.mark.parametrize("channel", ["default", "google", "amazon", "ebay", "shopify_seo"])
def test_each_channel_gets_copy_within_its_limits(
    generator: TransformersGenerator, channel: str
) -> None:
    pipeline = Pipeline(COPYFLOW_INPUT, max_event_bytes=1 << 20)
    long_title = "Testbrand Blue Cotton Shirt " + " ".join(["Shirt"] * 60)
    long_description = " ".join(f"A blue cotton shirt number {i}." for i in range(400))
    result = GenerationResult("...", long_title, long_description, None, 50, 20)
    suggestion = pipeline.build(
        Job(event(1, channels=[channel]), channel), result, generator.model_info, latency_ms=1.0
    )
    rules = get_channel(channel)
    assert len(suggestion.title) <= rules.title_max
    assert len(suggestion.description) <= rules.description_max
    lengths = {c.name: c.passed for c in suggestion.checks if c.name.endswith(":length")}
    assert lengths == {"title:length": True, "description:length": True}


def test_a_suggestion_that_cannot_be_built_is_a_dead_letter(
    generator: TransformersGenerator,
) -> None:
    """A crash here would replay the event forever; its own dead letter lets the rest go on."""

    class EmptyTitle(CopyReviewer):
        def review(self, *args: object, **kwargs: object) -> Reviewed:
            return Reviewed("", "d", [], fallback_used=False)

    pipeline = Pipeline(COPYFLOW_INPUT, 1 << 20, EmptyTitle())
    result = GenerationResult("...", "T", "D", None, 1, 1)
    [outcome] = pipeline.build_all([Job(event(1), "default")], [result], generator.model_info, 1.0)
    assert isinstance(outcome, DeadLetter) and outcome.kind == "check"
    assert "title" in outcome.reason
