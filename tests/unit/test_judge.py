"""The quality judge: each finding, on real outputs the default model wrote (quoted in the
copy-quality issue) and on made-up products of several kinds."""

from __future__ import annotations

import pytest

from copyflow.plugins.channels import get_channel
from copyflow.plugins.judge import Judge, ProductFacts
from copyflow.plugins.text import complete_sentences, product_type
from copyflow.schemas import Product

DEFAULT = get_channel("default")

LIPSTICK = Product(
    product_id="bt-1",
    title="matte lipstick ruby red",
    brand="Velour",
    category=["Beauty", "Makeup", "Lipstick"],
    attributes={"color": "ruby red", "finish": "matte"},
)
FILTER_PAD = Product(
    product_id="ap-1",
    title="Honeywell HC-888N Humidifier Replacement Filter Pad, Pack of 2",
    brand="Honeywell",
    category=["Appliances", "Humidifier Filters"],
)
DUCT = Product(
    product_id="ap-2",
    title="Deflecto Supurr-Flex Aluminum Dryer Vent Duct, 4 in x 8 ft",
    brand="Deflecto",
)
KNOBS = Product(
    product_id="ap-3", title="Range Kleen 8224 Gas Range Knobs, Chrome", brand="Range Kleen"
)
BEER = Product(
    product_id="zh-1",
    locale="zh-CN",
    title="青岛啤酒 经典 500ml 生啤酒",
    brand="青岛啤酒",
    category=["酒水", "啤酒"],
)


def title_finding(product: Product, title: str, name: str) -> tuple[bool, str]:
    judgement = Judge().title(ProductFacts.of(product), DEFAULT, title)
    finding = judgement.finding(name)
    assert finding is not None
    return finding.passed, finding.detail


def description_finding(product: Product, text: str, name: str) -> tuple[bool, str]:
    judgement = Judge().description(ProductFacts.of(product), DEFAULT, text, product.title)
    finding = judgement.finding(name)
    assert finding is not None
    return finding.passed, finding.detail


def test_lipstick_becoming_a_mug_is_a_new_content_word_and_a_lost_type() -> None:
    passed, detail = title_finding(LIPSTICK, "Velour Mug", "new_words")
    assert not passed and "Mug" in detail
    assert not title_finding(LIPSTICK, "Velour Mug", "type_kept")[0]
    assert title_finding(LIPSTICK, "Velour Matte Lipstick, Ruby Red", "new_words")[0]
    assert title_finding(LIPSTICK, "Velour Matte Lipstick, Ruby Red", "type_kept")[0]


def test_an_invented_model_code_is_new_and_the_real_one_dropped() -> None:
    passed, detail = title_finding(FILTER_PAD, "Honeywell H1000", "new_words")
    assert not passed and "H1000" in detail
    passed, detail = title_finding(FILTER_PAD, "Honeywell H1000", "codes_kept")
    assert not passed and "HC-888N" in detail
    assert not title_finding(FILTER_PAD, "Honeywell H1000", "numbers_kept")[0]  # the 2


def test_a_title_cut_to_the_brand_drops_type_and_numbers() -> None:
    assert not title_finding(DUCT, "Deflecto", "type_kept")[0]
    passed, detail = title_finding(DUCT, "Deflecto", "numbers_kept")
    assert not passed and "4" in detail and "8" in detail
    kept = "Deflecto Supurr-Flex Aluminum Dryer Vent Duct, 4 in x 8 ft"
    for name in ("type_kept", "numbers_kept", "brand_kept", "new_words"):
        assert title_finding(DUCT, kept, name)[0], name


def test_the_product_type_is_the_category_leaf_or_the_head_of_the_title() -> None:
    assert product_type(LIPSTICK) == "lipstick"
    assert product_type(KNOBS) == "Knobs"  # before ", Chrome"; "Range" is the brand's
    assert product_type(DUCT) == "Vent Duct"
    assert product_type(Product(product_id="w", title="Titan Women Silver Watch")) == "Watch"
    assert product_type(BEER) == "啤酒"
    assert not title_finding(KNOBS, "Range Kleen Range 8224", "type_kept")[0]
    assert title_finding(KNOBS, "Range Kleen 8224 Gas Range Knob, Chrome", "type_kept")[0]


def test_brand_dropped_and_brand_kept_with_other_spacing() -> None:
    product = Product(product_id="p", title="Protec DynaFilter Air Filter", brand="Pro Tec")
    assert title_finding(product, "Pro Tec DynaFilter Air Filter", "brand_kept")[0]
    assert not title_finding(product, "DynaFilter Air Filter", "brand_kept")[0]


def test_coverage_counts_the_key_attributes_the_title_names() -> None:
    product = Product(
        product_id="s",
        title="check shirt",
        brand="Turtle",
        attributes={"gender": "Men", "color": "Navy Blue", "size": "M"},
    )
    passed, detail = title_finding(product, "Turtle Men's Navy Blue Check Shirt", "coverage")
    assert not passed and detail.startswith("4/5") and "size" in detail
    assert title_finding(product, "Turtle Men's Navy Blue Check Shirt, Size M", "coverage")[0]


def test_a_description_ending_mid_sentence_is_incomplete() -> None:
    assert not description_finding(DUCT, "Flexible duct for dryers that", "complete")[0]
    assert description_finding(DUCT, "Flexible duct for dryers.", "complete")[0]
    assert description_finding(BEER, "经典口味的生啤酒。", "complete")[0]
    assert complete_sentences("One. Two is cut") == "One."
    assert complete_sentences("Weighs 2.5 kg and") == ""


def test_a_description_naming_another_product_or_value_is_ungrounded() -> None:
    passed, detail = description_finding(LIPSTICK, "A velvet mug for tea.", "grounded")
    assert not passed and "mug" in detail
    passed, detail = description_finding(LIPSTICK, "A lipstick in blue.", "grounded")
    assert not passed and "blue" in detail
    assert description_finding(LIPSTICK, "A matte lipstick in ruby red.", "grounded")[0]


def test_a_replacement_character_or_control_character_is_broken() -> None:
    passed, detail = title_finding(BEER, "青岛啤酒 经典 500ml 生啤\ufffd", "well_formed")
    assert not passed and "U+FFFD" in detail
    assert not description_finding(DUCT, "A duct.\x07", "well_formed")[0]
    assert title_finding(BEER, "青岛啤酒 经典 500ml 生啤酒", "well_formed")[0]


def test_a_cjk_loop_without_spaces_is_degenerate() -> None:
    passed, detail = title_finding(BEER, "500ml生啤酒生啤酒生啤酒生啤酒", "not_degenerate")
    assert not passed and "生啤酒" in detail
    passed, _ = title_finding(
        Product(product_id="l", title="Leviton 5050 Outlet", brand="Leviton"),
        "Leviton 5050 5050 5050 5050 5",
        "not_degenerate",
    )
    assert not passed


def test_an_english_description_for_a_chinese_product_is_the_wrong_language() -> None:
    passed, _ = description_finding(
        BEER, "A classic draft beer from Qingdao with a fresh taste.", "language"
    )
    assert not passed
    assert description_finding(BEER, "青岛啤酒经典生啤酒,500ml。", "language")[0]
    # Latin brand names in CJK copy are normal.
    assert title_finding(BEER, "青岛啤酒 Tsingtao 经典 500ml 生啤酒", "language")[0]


def test_cjk_characters_no_field_gives_are_new() -> None:
    passed, detail = title_finding(BEER, "青岛啤酒 经典 500ml 黑啤酒", "new_words")
    assert not passed and "黑" in detail


def test_changed_compares_after_normalization() -> None:
    assert not title_finding(KNOBS, "  Range Kleen 8224 Gas Range Knobs,  Chrome ", "changed")[0]
    assert title_finding(KNOBS, "Range Kleen 8224 Chrome Gas Range Knobs", "changed")[0]


@pytest.mark.parametrize(
    ("bad", "good"),
    [
        ("Velour Mug", "Velour Matte Lipstick Ruby Red"),
        ("Velour Lipstick", "Velour Matte Lipstick Ruby Red"),  # keeps less
        ("velour matte lipstick ruby red", "Velour Matte Lipstick Ruby Red"),  # casing
    ],
)
def test_scores_order_candidates_as_a_merchant_would(bad: str, good: str) -> None:
    facts = ProductFacts.of(LIPSTICK)
    judge = Judge()
    assert judge.title(facts, DEFAULT, good).score > judge.title(facts, DEFAULT, bad).score


def test_a_fault_outweighs_any_quality_gain() -> None:
    facts = ProductFacts.of(LIPSTICK)
    faulty = Judge().title(facts, DEFAULT, "Velour Matte Lipstick Ruby Red Mug")
    plain = Judge().title(facts, DEFAULT, "matte lipstick ruby red")
    assert faulty.faults and not plain.faults
    assert plain.score > faulty.score
