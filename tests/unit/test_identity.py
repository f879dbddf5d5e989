"""One copy identity: every part of the recipe moves both the suggestion id and the cache key;
equal recipes give equal ids and keys, in this process and in another."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from copyflow.consumer.cache import cache_key
from copyflow.consumer.identity import channel_rules_digest
from copyflow.consumer.pipeline import Job, Pipeline, Route
from copyflow.plugins.channels import channels
from copyflow.plugins.layouts import WHOLE_TENANT, TitleLayouts
from copyflow.plugins.review import CopyReviewer
from copyflow.schemas import ModelInfo, ProductEvent
from tests.harness import COPYFLOW_INPUT, product_event

GENERATOR = ModelInfo(
    base="m",
    revision="r1",
    prompt_version="v3",
    decoding="greedy;dtype=float32;max_new_tokens=140",
)


def served(banned: tuple[str, ...] = ()) -> ModelInfo:
    return Pipeline(COPYFLOW_INPUT, 1 << 20, CopyReviewer(banned)).served_model(GENERATOR)


def event(**product: object) -> ProductEvent:
    return ProductEvent.model_validate(product_event(1, **product))


def identity(job: Job, model: ModelInfo) -> tuple[str, str]:
    return job.suggestion_key(model), cache_key("p", job, model)


@contextmanager
def wider_default_channel() -> Iterator[None]:
    """The default channel with a longer title limit, as another deployment may register it."""
    registry = channels()
    original = registry["default"]
    registry["default"] = dataclasses.replace(original, title_max=original.title_max + 10)
    channel_rules_digest.cache_clear()
    try:
        yield
    finally:
        registry["default"] = original
        channel_rules_digest.cache_clear()


def with_model(**update: str) -> tuple[Job, ModelInfo]:
    """The baseline job, made by a model info that differs in update."""
    return Job(event(), "default"), served().model_copy(update=update)


def baseline() -> tuple[Job, ModelInfo]:
    return Job(event(), "default"), served()


CHANGES: dict[str, Callable[[], tuple[Job, ModelInfo]]] = {
    "checks settings": lambda: (Job(event(), "default"), served(("must-have",))),
    "decoding": lambda: with_model(decoding="greedy;dtype=bfloat16;max_new_tokens=140"),
    "adapter": lambda: (Job(event(), "default", Route("a1", "tenant-a", "v0001")), served()),
    "adapter version": lambda: (
        Job(event(), "default", Route("a1", "tenant-a", "v0002")),
        served(),
    ),
    "prompt": lambda: with_model(prompt_version="v2"),
    "adapter's prompt": lambda: (
        Job(event(), "default", Route("a1", "tenant-a", "v0001", "s1")),
        served(),
    ),
    "model revision": lambda: with_model(revision="r2"),
    "layouts": lambda: (
        Job(event(), "default", None, TitleLayouts({WHOLE_TENANT: ("type", "brand")})),
        served(),
    ),
    "channel": lambda: (Job(event(channels=["amazon"]), "amazon"), served()),
    "content": lambda: (Job(event(title="Another title"), "default"), served()),
    "tenant": lambda: (Job(event(tenant="tenant-b"), "default"), served()),
}


@pytest.mark.parametrize("part", list(CHANGES))
def test_each_part_of_the_recipe_changes_the_id_and_the_cache_key(part: str) -> None:
    before_id, before_key = identity(*baseline())
    after_id, after_key = identity(*CHANGES[part]())
    assert after_id != before_id
    assert after_key != before_key


def test_channel_limits_change_the_id_and_the_cache_key() -> None:
    before_id, before_key = identity(*baseline())
    with wider_default_channel():
        after_id, after_key = identity(*baseline())
    assert after_id != before_id
    assert after_key != before_key
    assert identity(*baseline()) == (before_id, before_key)


def test_fields_outside_the_copy_change_neither() -> None:
    before = identity(*baseline())
    assert identity(Job(event(price="19.99"), "default"), served()) == before


_IN_ANOTHER_PROCESS = """
import json
from tests.unit.test_identity import CHANGES, baseline, identity
print(json.dumps({"baseline": identity(*baseline()), "prompt": identity(*CHANGES["prompt"]())}))
"""


def test_equal_recipes_give_equal_ids_across_processes() -> None:
    # Another interpreter, another hash seed: nothing in the id may depend on either.
    answer = subprocess.run(
        [sys.executable, "-c", _IN_ANOTHER_PROCESS],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
        cwd=Path(__file__).resolve().parents[2],
    )
    there = json.loads(answer.stdout)
    assert tuple(there["baseline"]) == identity(*baseline())
    assert tuple(there["prompt"]) == identity(*CHANGES["prompt"]())
