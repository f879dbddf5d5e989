"""The evaluation's scores and its readers of the catalog files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from copyflow.cli import build_parser
from copyflow.evaluation.data import DataError, Item, item_from_row, load_items, messy
from copyflow.evaluation.report import headline_table, sources_table
from copyflow.evaluation.scores import (
    Copy,
    Referee,
    bleu,
    by_characters,
    covers,
    distinct_n,
    judge_figures,
    rouge_l,
    rouge_l_chars,
    rouge_l_for,
    score,
    source_shares,
)
from copyflow.plugins.channels import get_channel
from copyflow.schemas import Product


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


def test_rouge_l_over_characters_for_cjk() -> None:
    assert rouge_l_chars("青岛啤酒", "青岛啤酒") == 1.0
    # LCS 4 of 5 and 4 characters: precision 0.8, recall 1.0 -> F1 8/9; as words, 0.
    assert rouge_l_chars("青岛生啤酒", "青岛啤酒") == pytest.approx(8 / 9)
    assert rouge_l("青岛生啤酒", "青岛啤酒") == 0.0
    # Spaces, punctuation and case are not counted; NFKC folds full-width forms.
    assert rouge_l_chars("青岛 啤酒\uff0c\uff15\uff10\uff10ML", "青岛啤酒500ml") == 1.0
    assert rouge_l_chars("", "青岛啤酒") == 0.0


def test_rouge_l_picks_characters_by_locale_or_reference() -> None:
    assert by_characters("zh-CN", "Tsingtao Beer") and by_characters("ja", "x")
    assert by_characters("en-US", "青岛啤酒") and not by_characters("en-US", "Blue Shirt")
    assert rouge_l_for("青岛生啤酒", "青岛啤酒", "en-US") == pytest.approx(8 / 9)
    # A Latin title in a CJK locale is read by characters too: "beer" vs "bear" share 3.
    assert rouge_l_for("beer", "bear", "ko-KR") == pytest.approx(0.75)
    assert rouge_l_for("beer", "bear", "en-US") == 0.0
    assert rouge_l_for("blue linen shirt", "blue shirt", "en-US") == pytest.approx(0.8)


def test_bleu_counts_characters_where_asked() -> None:
    assert bleu(["青岛啤酒经典款"], ["青岛啤酒经典款"], characters=[True]) == 1.0
    assert bleu(["青岛啤酒经典款"], ["青岛啤酒经典"], characters=[False]) == 0.0


def test_score_uses_character_rouge_for_a_cjk_product() -> None:
    beer = Product(product_id="zh-1", locale="zh-CN", title="青岛啤酒", brand="青岛")
    item = Item(beer, reference_title="青岛啤酒", reference_description="青岛经典啤酒。")
    figures = score([Copy(item, "青岛生啤酒", "经典啤酒。")], get_channel("default"))
    assert figures["rouge_l_title"] == pytest.approx(8 / 9)
    # "经典啤酒" in "青岛经典啤酒": LCS 4 of 4 and 6 -> F1 0.8
    assert figures["rouge_l_description"] == pytest.approx(0.8)


BOTTLE = Product(
    product_id="b-1",
    title="acme steel water bottle 750 ml",
    brand="Acme",
    category=["Kitchen", "Water Bottles"],
    attributes={"color": "Blue"},
    description="A steel bottle for water. It holds 750 ml.",
)
GOOD_TITLE = "Acme Blue Steel Water Bottle 750 ml"
GOOD_DESCRIPTION = "Acme blue steel water bottle. It holds 750 ml of water."


def test_judge_figures_on_a_system_without_its_own_verdicts() -> None:
    item = Item(BOTTLE, reference_title=GOOD_TITLE)
    copies = [
        Copy(item, GOOD_TITLE, GOOD_DESCRIPTION),  # better than the original: improved
        # "Flask": a word no field gives, and the product type dropped; cut-off description
        Copy(item, "Acme Blue Steel Water Flask 750 ml", "A steel bottle that keeps"),
        Copy(item, "Acme Blue Steel Water Bottle", ""),  # drops 750 ml; no description
        Copy(item, GOOD_TITLE + "\ufffd", "A bottle."),  # a broken character
        Copy(item, BOTTLE.title, BOTTLE.description),  # unchanged: never improved
    ]
    figures = judge_figures(copies, Referee(get_channel("default")))
    assert figures["improved_title_rate"] == pytest.approx(1 / 5)
    assert figures["type_kept_rate"] == pytest.approx(4 / 5)
    assert figures["new_words_rate"] == pytest.approx(1 / 5)
    assert figures["dropped_numbers_rate"] == pytest.approx(1 / 5)
    assert figures["incomplete_description_rate"] == pytest.approx(1 / 5)
    assert figures["empty_description_rate"] == pytest.approx(1 / 5)
    assert figures["broken_characters_rate"] == pytest.approx(1 / 5)
    # All but the first score below "Acme Steel Water Bottle 750 ml", the original tidied.
    assert figures["below_cleaned_rate"] == pytest.approx(4 / 5)
    assert figures["fallback_rate"] is None  # only copyflow says where its title came from
    assert figures["empty_title_rate"] == 0.0


def test_an_empty_title_keeps_no_type_and_drops_the_numbers() -> None:
    item = Item(BOTTLE)
    figures = judge_figures([Copy(item, "", "A bottle.")], Referee(get_channel("default")))
    assert figures["type_kept_rate"] == 0.0 and figures["dropped_numbers_rate"] == 1.0
    assert figures["empty_title_rate"] == 1.0 and figures["below_cleaned_rate"] == 1.0


def test_copyflow_copy_counts_by_its_own_verdict_and_sources() -> None:
    item = Item(BOTTLE)
    copies = [
        Copy(item, GOOD_TITLE, GOOD_DESCRIPTION, True, True, "composed", "template"),
        # Improved by its description only: the title is the original, not an improved one.
        Copy(item, BOTTLE.title, GOOD_DESCRIPTION, True, True, "original", "model"),
        # The reviewer did not call it improved: the judge's own scores are not asked.
        Copy(item, GOOD_TITLE, GOOD_DESCRIPTION, False, False, "model", "model"),
    ]
    figures = judge_figures(copies, Referee(get_channel("default")))
    assert figures["improved_title_rate"] == pytest.approx(1 / 3)
    assert figures["fallback_rate"] == pytest.approx(2 / 3)
    assert source_shares(copies) == {
        "title": {"composed": pytest.approx(1 / 3), "original": pytest.approx(1 / 3),
                  "model": pytest.approx(1 / 3)},
        "description": {"model": pytest.approx(2 / 3), "template": pytest.approx(1 / 3)},
    }  # fmt: skip


def test_headline_table_leads_with_the_judges_rows() -> None:
    item = Item(BOTTLE, reference_title=GOOD_TITLE)
    rules = get_channel("default")
    referee = Referee(rules)
    ours = [Copy(item, GOOD_TITLE, GOOD_DESCRIPTION, True, False, "model", "model")]
    results = {
        "systems": {
            "original": score([Copy(item, BOTTLE.title, BOTTLE.description)], rules, referee),
            "copyflow": score(ours, rules, referee),
        },
        "copyflow_sources": source_shares(ours),
    }
    lines = headline_table(results).splitlines()
    assert lines[0] == "| metric | original | copyflow |"
    labels = [line.split(" | ")[0].lstrip("| ") for line in lines[2:]]
    assert labels[:8] == [
        "titles improved (judge)",
        "kept the product type",
        "titles with new content words",
        "titles that drop numbers",
        "incomplete descriptions",
        "broken characters",
        "fallbacks (title not the model's)",
        "titles scoring below the cleaned original",
    ]
    assert labels[8] == "ROUGE-L title vs reference"
    assert "| fallbacks (title not the model's) | - | 0.0% |" in lines
    assert "| model | 100.0% | 100.0% |" in sources_table(results)


def test_reads_before_after_pairs(tmp_path: Path) -> None:
    event = {
        "id": "e-1",
        "type": "product.updated",
        "source": "catalog",
        "time": "2026-01-01T00:00:00Z",
        "tenant": "t",
        "data": {"product_id": "own-2", "title": "青岛啤酒", "locale": "zh-CN"},
    }
    rows: list[dict[str, object]] = [
        {
            "product": {"product_id": "own-1", "title": "oak board", "brand": "Timberly"},
            "reference_title": "Timberly Oak Cutting Board",
            "reference_description": "A board of solid oak.",
        },
        {"product": event, "reference_title": "青岛经典啤酒"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    board, beer = load_items(path)
    assert board.product.title == "oak board" and board.key_attributes == {"brand": "Timberly"}
    assert board.reference_title == "Timberly Oak Cutting Board"
    assert board.reference_description == "A board of solid oak."
    assert beer.product.product_id == "own-2" and beer.product.locale == "zh-CN"
    assert beer.reference_title == "青岛经典啤酒" and beer.reference_description is None
    assert item_from_row(rows[0]).reference_title == "Timberly Oak Cutting Board"


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"product": {"product_id": "a", "title": "x"}}, "reference_title"),
        ({"product": {"product_id": "a", "title": "x"}, "reference_title": " "}, "reference_title"),
        (
            {"product": {"product_id": "a", "title": "x"}, "reference_title": "X", "ref": "y"},
            "unknown fields in a pair: ref",
        ),
        ({"product": {"product_id": "a"}, "reference_title": "X"}, "ValidationError"),
    ],
)
def test_a_bad_pair_is_named(tmp_path: Path, row: dict[str, object], error: str) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=rf"pairs.jsonl:1: .*{error}"):
        list(load_items(path))


FASHION = [
    {
        "id": f"styles-{n}",
        "gender": "Men",
        "master_category": "Apparel",
        "sub_category": "Topwear",
        "color": "Navy Blue",
        "title": title,
    }
    for n, title in enumerate(["Turtle Check Men Navy Blue Shirt", "Puma Men Grey T-shirt"])
]


def test_messy_titles_are_drawn_as_the_style_bench_draws_them(tmp_path: Path) -> None:
    path = tmp_path / "styles.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in FASHION))
    rng = random.Random(7)
    expected = [messy(row, rng) for row in FASHION]
    items = list(load_items(path, messy_titles=True))
    assert [i.product.title for i in items] == expected
    assert [i.reference_title for i in items] == [r["title"] for r in FASHION]
    first = items[0].product.title.split()
    assert sorted(first) == ["check", "shirt", "turtle"]  # no gender or color words
    assert items[0].product.attributes["color"] == "Navy Blue"
    assert items[0].key_attributes["product_type"] == "Shirt"
    # Without the flag the title is the real one.
    assert next(iter(load_items(path))).product.title == FASHION[0]["title"]


def test_messy_titles_need_fashion_rows(tmp_path: Path) -> None:
    path = tmp_path / "ours.jsonl"
    path.write_text('{"product_id": "a", "title": "oak board"}\n')
    with pytest.raises(DataError, match="fashion_styles rows only"):
        list(load_items(path, messy_titles=True))


def test_eval_arguments() -> None:
    parser = build_parser()
    base = ["eval", "--input", "x.jsonl", "--report", "out"]
    args = parser.parse_args(base)
    assert args.systems == ["original", "naive", "copyflow", "composed"] and not args.messy
    args = parser.parse_args([*base, "--systems", "copyflow, composed", "--messy", "--limit", "5"])
    assert args.systems == ["copyflow", "composed"] and args.messy and args.limit == 5
    for bad in (["--systems", "original,etsy"], ["--systems", ","], ["--limit", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args([*base, *bad])
