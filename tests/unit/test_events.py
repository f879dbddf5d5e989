from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from copyflow.schemas import Feedback, Product, ProductEvent, Suggestion
from tests.harness import product_event

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "catalog.jsonl"


def test_event_parses_and_tolerates_unknown_fields() -> None:
    raw = product_event(1)
    raw["traceparent"] = "00-abc"  # added by a newer producer
    raw["data"]["price"] = {"amount": 10, "currency": "EUR"}  # type: ignore[index]
    event = ProductEvent.model_validate(raw)
    assert event.data.product_id == "p-1"
    assert event.data.channels == ["default"]
    assert event.data.locale == "en-US"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("type",), "product.deleted"),
        (("tenant",), ""),
        (("data", "title"), "   "),
        (("data", "locale"), "english"),
        (("data", "channels"), []),
        (("schema_version",), "2"),
    ],
)
def test_invalid_fields_are_rejected(path: tuple[str, ...], value: object) -> None:
    raw = product_event(1)
    target: dict[str, object] = raw
    for key in path[:-1]:
        target = target[key]  # type: ignore[assignment]
    target[path[-1]] = value
    with pytest.raises(ValidationError) as info:
        ProductEvent.model_validate(raw)
    assert info.value.errors()[0]["loc"][: len(path)] == path


def test_required_fields_are_enforced() -> None:
    raw = product_event(1)
    del raw["data"]["product_id"]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="product_id"):
        ProductEvent.model_validate(raw)


def test_content_hash_covers_content_only() -> None:
    base = Product(product_id="p", title="Blue shirt", attributes={"color": "blue", "size": "M"})
    reordered = Product(
        product_id="p", title="Blue shirt", attributes={"size": "M", "color": "blue"}
    )
    other_channels = base.model_copy(update={"channels": ["amazon"]})
    retitled = base.model_copy(update={"title": "Red shirt"})
    assert base.content_hash() == reordered.content_hash() == other_channels.content_hash()
    assert base.content_hash() != retitled.content_hash()


def test_content_hash_is_sha256_of_canonical_json() -> None:
    # Suggestion ids and cache keys derive from this hash: its bytes must never change.
    product = Product(
        product_id="p",
        title='Chemise \u00e9t\u00e9 \U0001f600 "quoted" \\ tab\tnew\nline \x01\x7f\u2028',
        description="caf\u00e9",
        brand="B\u00f8",
        category=["Men", "Shirts"],
        attributes={"size": "M", "color": "blue", "\u00e4": "x"},
        keywords=["summer"],
        locale="fr-FR",
    )
    content = {
        "title": product.title,
        "description": product.description,
        "brand": product.brand,
        "category": product.category,
        "attributes": product.attributes,
        "keywords": product.keywords,
        "locale": product.locale,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert product.content_hash() == hashlib.sha256(canonical.encode()).hexdigest()
    # The value the code before pydantic serialized it gave (so ids made then still match).
    assert Product(product_id="q", title="Blue").content_hash() == (
        "f2c1c1d7a357eb9bdcc8dfa77ac400879f34be62549b785b3fd23449bc736f10"
    )


def test_edited_feedback_needs_final_text() -> None:
    common = {"suggestion_id": str(uuid.uuid4()), "product_id": "p", "tenant": "t"}
    with pytest.raises(ValidationError, match="edited"):
        Feedback.model_validate({**common, "action": "edited"})
    assert Feedback.model_validate({**common, "action": "edited", "final_title": "T"}).final_title
    assert Feedback.model_validate({**common, "action": "rejected"}).action == "rejected"


def test_suggestion_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Suggestion.model_validate({"surprise": 1})


def test_example_catalog_has_valid_and_broken_events() -> None:
    valid = broken = 0
    for line in EXAMPLES.read_text().splitlines():
        try:
            ProductEvent.model_validate(json.loads(line))
            valid += 1
        except (ValueError, ValidationError):
            broken += 1
    assert valid >= 30
    assert broken >= 3
