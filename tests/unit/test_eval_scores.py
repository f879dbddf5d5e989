"""The evaluation's scores and its readers of the catalog files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copyflow.evaluation.data import DataError, Item, load_items
from copyflow.evaluation.scores import Copy, bleu, covers, distinct_n, rouge_l, score
from plugins.channels import get_channel
from schemas import Product


def test_rouge_l() -> None:
    assert rouge_l("blue cotton shirt", "blue cotton shirt") == 1.0
    assert rouge_l("red hat", "blue cotton shirt") == 0.0
    # LCS "blue shirt" = 2: precision 2/3, recall 2/2 -> F1 0.8
    assert rouge_l("blue linen shirt", "blue shirt") == pytest.approx(0.8)


def test_bleu() -> None:
    assert bleu(["the blue cotton shirt for men"], ["the blue cotton shirt for men"]) == 1.0
    assert bleu(["red hat"], ["the blue cotton shirt for men"]) == 0.0
    partial = bleu(["the blue cotton shirt for women"], ["the blue cotton shirt for men"])
    assert 0.0 < partial < 1.0


def test_distinct_n() -> None:
    assert distinct_n(["a b a b"], 1) == 0.5
    assert distinct_n(["a b c", "a b d"], 2) == 0.75


@pytest.mark.parametrize(
    ("name", "value", "text", "expected"),
    [
        ("gender", "Men", "Classic Men's Shirt", True),
        ("gender", "Women", "Classic Men's Shirt", False),
        ("color", "Navy Blue", "A navy shirt", True),
        ("brand", "Peter England", "Peter England Jeans", True),
        ("brand", "Peter England", "England Jeans", False),
        ("product_type", "T-shirt", "A cotton T-shirt", True),
    ],
)
def test_covers(name: str, value: str, text: str, expected: bool) -> None:
    assert covers(text, name, value) is expected


def test_score_counts_compliance_coverage_grounding_and_duplicates() -> None:
    product = Product(product_id="p", title="acme blue mug", brand="Acme")
    item = Item(product, reference_title="acme blue mug", key_attributes={"brand": "Acme"})
    copies = [
        Copy(item, "Acme Blue Mug", "A blue mug."),
        Copy(item, "Acme Blue Mug", "A red mug."),  # unsupported color; duplicate title
        Copy(item, "Mug " * 30, "x"),  # too long for eBay, no brand
    ]
    figures = score(copies, get_channel("ebay"))
    assert figures["length_compliance"] == pytest.approx(2 / 3)
    assert figures["coverage_brand"] == pytest.approx(2 / 3)
    assert figures["unsupported_rate"] == pytest.approx(1 / 3)
    assert figures["duplicate_title_rate"] == pytest.approx(2 / 3)
    assert figures["rouge_l_title"] is not None and "rouge_l_description" not in figures


def test_reads_each_format(tmp_path: Path) -> None:
    rows = [
        {
            "id": "styles-1",
            "gender": "Men",
            "master_category": "Apparel",
            "sub_category": "Topwear",
            "color": "Navy Blue",
            "title": "Acme Men Navy Blue Shirt",
        },
        {
            "id": "myntra-1",
            "source": "myntra_products_catalog",
            "brand": "Acme",
            "gender": "Women",
            "color": "Red",
            "price_inr": 999.0,
            "title": "Acme Women Textured Top",
            "description": "A top.",
        },
        {"product_id": "own-1", "title": "oak board", "brand": "Timberly"},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fashion, myntra, ours = load_items(path)
    assert fashion.key_attributes == {
        "gender": "Men",
        "color": "Navy Blue",
        "product_type": "Shirt",
    }
    assert fashion.product.category == ["Apparel", "Topwear"]
    # myntra's color came from the title upstream and can be wrong: not given, not scored.
    assert "color" not in myntra.product.attributes and "color" not in myntra.key_attributes
    assert myntra.reference_description == "A top."
    assert ours.key_attributes == {"brand": "Timberly"}
    assert len(list(load_items(path, limit=2))) == 2


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"product_id": "a", "title": "ok"}\n{"product_id": "b"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: ValidationError"):
        list(load_items(path))
