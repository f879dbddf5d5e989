"""Candidates and selection: the best candidate wins, never one below the cleaned original,
and every suggestion says which candidate won, why, and whether it improves the original."""

from __future__ import annotations

import pytest

from copyflow.plugins.candidates import (
    clean_description,
    clean_title,
    compose_title,
    template_description,
)
from copyflow.plugins.channels import get_channel
from copyflow.plugins.judge import Judge, ProductFacts
from copyflow.plugins.review import CopyReviewer
from copyflow.plugins.validators import Grounding
from copyflow.schemas import Product

SKILLET = Product(
    product_id="hm-1",
    title="cast iron skillet 26cm pre-seasoned",
    brand="Forgeline",
    category=["Home", "Kitchen", "Skillets"],
    attributes={"color": "black", "material": "cast iron", "diameter": "26cm"},
    description="A heavy pan for searing. Fits 9/16 burners.",
)
SHIRT = Product(
    product_id="s-1",
    title="check shirt turtle",
    category=["Apparel", "Topwear"],
    attributes={"gender": "Men", "color": "Navy Blue", "season": "Fall", "usage": "Casual"},
)
GOOD = Product(
    product_id="g-1",
    title="Roadster Men's Navy Blue Slim Fit Jeans",
    brand="Roadster",
    attributes={"gender": "Men", "color": "Navy Blue"},
    description="Navy blue slim fit jeans with five pockets.",
)


def review(product: Product, title: str | None, description: str | None, channel: str = "default"):  # type: ignore[no-untyped-def]
    error = None if title is not None else "no TITLE: line"
    return CopyReviewer().review(product, get_channel(channel), title, description, error)


def test_a_model_title_that_invents_loses_to_the_composed_title() -> None:
    reviewed = review(SKILLET, "Forgeline Copper Mug", "A copper mug for tea.")
    assert reviewed.title_source == "composed"
    assert reviewed.title == "Forgeline Cast Iron Black Skillet 26cm Pre-Seasoned"
    assert reviewed.fallback_used and reviewed.improved
    assert Grounding.of(SKILLET).unsupported(f"{reviewed.title}\n{reviewed.description}") == []
    model_faults = [c for c in reviewed.checks if c.name.startswith("model title:")]
    assert any("Mug" in c.detail for c in model_faults)
    assert "title: composed" in reviewed.reason


def test_a_good_model_title_wins_and_is_not_a_fallback() -> None:
    title = "Forgeline Black Cast Iron Skillet 26cm, Pre-Seasoned"
    reviewed = review(SKILLET, title, "A heavy black skillet for searing.")
    assert reviewed.title_source in ("model", "composed")
    judge, facts = Judge(), ProductFacts.of(SKILLET)
    rules = get_channel("default")
    assert (
        judge.title(facts, rules, reviewed.title).score
        >= judge.title(facts, rules, clean_title(SKILLET, rules.title_max)).score
    )


@pytest.mark.parametrize("channel", ["default", "amazon", "ebay", "shopify_seo"])
@pytest.mark.parametrize(
    "answer",
    [
        (None, None),
        ("Velour Mug", "A mug for tea."),
        ("Forgeline", "Forgeline"),
        ("Forgeline Skillet Skillet Skillet Skillet", "Skillet skillet skillet skillet."),
    ],
)
def test_never_below_the_cleaned_original(
    channel: str, answer: tuple[str | None, str | None]
) -> None:
    rules = get_channel(channel)
    for product in (SKILLET, SHIRT, GOOD):
        reviewed = review(product, *answer, channel=channel)
        facts = ProductFacts.of(product)
        cleaned = Judge().title(facts, rules, clean_title(product, rules.title_max)).score
        assert Judge().title(facts, rules, reviewed.title).score >= cleaned
        assert len(reviewed.title) <= rules.title_max
        assert len(reviewed.description) <= rules.description_max
        assert reviewed.description.endswith((".", "!", "?"))


def test_a_tie_goes_to_the_merchants_text_first_and_then_to_the_models() -> None:
    """The model writing exactly the composed title is the model's title, not a fallback; the
    model writing exactly the merchant's title leaves the merchant's title in place."""
    composed = compose_title(SHIRT, get_channel("default").title_max)
    same_as_composed = review(SHIRT, composed, "A navy blue check shirt for men.")
    assert same_as_composed.title == composed
    assert same_as_composed.title_source == "model" and not same_as_composed.fallback_used
    same_as_original = review(GOOD, GOOD.title, "Navy blue slim fit jeans with five pockets.")
    assert same_as_original.title_source == "original" and same_as_original.fallback_used


def test_a_learned_models_faultless_title_is_taken_as_written() -> None:
    """From a tenant's adapter, a title (else its repair) the judge finds no fault in and
    scores no lower than the merchant's own is published, though the judge scores the composed
    title higher; one with a fault, or below the merchant's title, is not."""
    rules = get_channel("default")

    def pick(product: Product, title: str, learned: bool) -> tuple[str, str]:
        made = CopyReviewer().review(product, rules, title, "A shirt.", None, learned=learned)
        return made.title_source, made.title

    assert pick(SHIRT, "Men Navy Blue Check Shirt", learned=False)[0] == "composed"
    assert pick(SHIRT, "Men Navy Blue Check Shirt", learned=True) == (
        "model",
        "Men Navy Blue Check Shirt",
    )
    # An invented word: its repair (the word taken out) is taken, a title the model wrote.
    assert pick(SHIRT, "Men Navy Blue Copper Shirt", learned=True)[0] == "repaired"
    # Any word no field gives is taken out, not only known values (colors, materials, brands).
    assert pick(SHIRT, "Men Navy Blue Oxford Check Shirt", learned=True) == (
        "repaired",
        "Men Navy Blue Check Shirt",
    )
    # A dropped product type is put back where the merchant's title has it.
    assert pick(SHIRT, "Men Navy Blue Check Turtle", learned=True) == (
        "repaired",
        "Men Navy Blue Check Turtle Shirt",
    )
    assert pick(SHIRT, "Copper Bowl", learned=True)[0] == "composed"  # nothing left to repair
    assert pick(GOOD, "Roadster Jeans", learned=True)[0] == "original"  # below the merchant's


def test_a_title_that_is_already_good_is_not_improved() -> None:
    reviewed = review(GOOD, "Roadster Jeans", "Jeans.")
    assert reviewed.title == GOOD.title
    assert reviewed.title_source == "original"
    assert not reviewed.improved
    assert not next(c for c in reviewed.checks if c.name == "selection").passed


def test_a_messy_title_gets_its_attributes() -> None:
    reviewed = review(SHIRT, None, None)
    assert reviewed.improved and reviewed.title_source == "composed"
    # Laid out brand-and-name, gender, color, type: the words the merchant gave stay.
    assert reviewed.title == "Check Turtle Men's Navy Blue Shirt"
    assert reviewed.description.startswith(f"{reviewed.title}.")
    assert "For casual use." in reviewed.description


def test_a_parse_failure_is_recorded_and_the_copy_still_comes_from_the_fields() -> None:
    reviewed = review(SKILLET, None, None)
    assert reviewed.checks[0].name == "parsed" and reviewed.checks[0].detail == "no TITLE: line"
    assert reviewed.fallback_used
    assert "model: no usable answer" in reviewed.reason


def test_banned_and_promotional_phrases_never_win() -> None:
    reviewer = CopyReviewer(banned_phrases=["world class"])
    reviewed = reviewer.review(
        SKILLET,
        get_channel("amazon"),
        "Forgeline World Class Cast Iron Skillet 26cm",
        "A pre-seasoned skillet. Free shipping on every order.",
        None,
    )
    assert "world class" not in reviewed.title.lower()
    assert "shipping" not in reviewed.description.lower()


def test_wrong_language_copy_never_wins() -> None:
    german = SKILLET.model_copy(
        update={"locale": "de-DE", "title": "Gusseisenpfanne 26cm", "description": ""}
    )
    reviewed = review(
        german, "Cast Iron Skillet 26cm", "A heavy pan for the kitchen and the stove."
    )
    assert reviewed.title.startswith("Forgeline")
    assert "Gusseisenpfanne" in reviewed.title
    assert "kitchen" not in reviewed.description


def test_cleaning_fixes_casing_units_repeats_and_a_doubled_brand() -> None:
    product = Product(
        product_id="c", title="pro tec  Protec dynafilter filter filter 500 ML", brand="Pro Tec"
    )
    assert clean_title(product, 150) == "Pro Tec Dynafilter Filter 500 ml"
    shouting = Product(product_id="d", title="DEFLECTO DRYER VENT DUCT 4 IN", brand="Deflecto")
    assert clean_title(shouting, 150) == "Deflecto Dryer Vent Duct 4 in"
    mixed = Product(product_id="e", title="Voltra GaN Charger 65w", brand="Voltra")
    assert clean_title(mixed, 150) == "Voltra GaN Charger 65W"


def test_a_long_title_loses_its_qualifiers_before_its_head() -> None:
    product = Product(
        product_id="k",
        title="Range Kleen 8224 Gas Range Knobs, Chrome, Set of 4, fits gas ranges made after 2001",
        brand="Range Kleen",
    )
    assert clean_title(product, 60) == "Range Kleen 8224 Gas Range Knobs, Chrome, Set of 4"


def test_a_description_run_together_is_split_and_cut_to_whole_sentences() -> None:
    product = Product(
        product_id="m",
        title="DKNY Trolley Bag",
        description="Printed trolley bag, secured with a TSA lockOne handle on the top"
        "Warranty: 5 yearsWarranty provided by Brand Owner / Manufacturer. "
        "How to measure kurta length in",
    )
    cleaned = clean_description(product, 2000)
    assert cleaned.startswith(
        "Printed trolley bag, secured with a TSA lock. One handle on the top."
    )
    assert cleaned.endswith("Manufacturer.")


def test_the_template_description_is_in_the_product_language() -> None:
    beer = Product(
        product_id="z",
        locale="zh-CN",
        title="青岛啤酒 经典 500ml",
        attributes={"容量": "500ml", "口味": "经典"},
    )
    text = template_description(beer, "青岛啤酒 经典 500ml", 500)
    assert text.endswith("。") and "." not in text.replace("500ml", "")
    english = template_description(SHIRT, compose_title(SHIRT, 150), 500)
    assert "For the fall season." in english and "For casual use." in english
    bare = template_description(
        SHIRT.model_copy(update={"title": "turtle check shirt"}), "Shirt", 500
    )
    assert "It comes in navy blue." in bare and "Made for men." in bare


@pytest.mark.parametrize(
    ("title", "brand", "expected"),
    [
        (
            "hydrating face moisturizer spf 30 50ml",
            "Dermaleaf",
            "Dermaleaf Hydrating Face Moisturizer SPF 30 50ml",
        ),
        (
            "cast iron skillet 26cm pre-seasoned",
            "Forgeline",
            "Forgeline Cast Iron Skillet 26cm Pre-Seasoned",
        ),
    ],
)
def test_a_composed_title_keeps_what_follows_the_type_with_its_number(
    title: str, brand: str, expected: str
) -> None:
    assert compose_title(Product(product_id="c", title=title, brand=brand), 150) == expected
