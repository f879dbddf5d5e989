from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from copyflow.cli import main
from copyflow.schemas import ModelInfo, Product, Suggestion
from tests.harness import product_event


@pytest.fixture
def exported(tmp_path: Path) -> dict[str, dict[str, object]]:
    assert main(["schemas", "export", str(tmp_path)]) == 0
    return {
        p.name.removesuffix(".schema.json"): json.loads(p.read_text())
        for p in tmp_path.glob("*.schema.json")
    }


def test_one_schema_per_contract(exported: dict[str, dict[str, object]]) -> None:
    assert set(exported) == {
        "product_event",
        "suggestion",
        "feedback",
        "adapter_released",
        "layouts_released",
    }


def test_product_event_schema_accepts_and_rejects_like_the_models(
    exported: dict[str, dict[str, object]],
) -> None:
    validator = jsonschema.Draft202012Validator(exported["product_event"])
    assert validator.is_valid(product_event(1))
    broken = product_event(1)
    broken["type"] = "product.deleted"
    assert not validator.is_valid(broken)


def test_published_suggestions_validate_against_their_schema(
    exported: dict[str, dict[str, object]],
) -> None:
    suggestion = Suggestion(
        suggestion_id="6f1d2c4e-8b1a-5e0f-9c3d-2a7b4e5f6a10",
        product_id="p",
        tenant="t",
        source_event_id="e",
        channel="default",
        title="T",
        description="D",
        model=ModelInfo(base="m", revision="r", prompt_version="v1"),
        checks=[],
        fallback_used=False,
        latency_ms=1.0,
        content_hash="h",
        input=Product(product_id="p", title="t"),
    )
    jsonschema.validate(json.loads(suggestion.model_dump_json()), exported["suggestion"])


def test_layouts_released_validates_and_refuses_unknown_parts(
    exported: dict[str, dict[str, object]],
) -> None:
    from copyflow.schemas import LayoutsReleased

    validator = jsonschema.Draft202012Validator(exported["layouts_released"])
    event = LayoutsReleased(tenant="t", version="v", layouts={"*": ["brand", "type"]})
    assert validator.is_valid(json.loads(event.model_dump_json()))
    assert not validator.is_valid({"type": "layouts.released", "version": "v",
                                   "layouts": {"*": ["hat"]}})  # fmt: skip
