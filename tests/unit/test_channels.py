"""Channel rules: limits, word-boundary truncation, style, and the registry."""

from __future__ import annotations

import pytest

from copyflow.plugins.channels import UnknownChannel, channels, get_channel, truncate_words

LIMITS = {
    "google": (150, 5000),
    "amazon": (200, 2000),
    "ebay": (80, 4000),
    "shopify_seo": (70, 160),
    "default": (150, 1000),
}


def test_every_builtin_channel_has_its_limits() -> None:
    assert {name: (r.title_max, r.description_max) for name, r in channels().items()} == LIMITS


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_fit_cuts_long_copy_at_word_boundaries(name: str) -> None:
    rules = get_channel(name)
    words = [f"word{i}" for i in range(2000)]
    title, description, check = rules.fit(" ".join(words[:100]), " ".join(words))
    assert len(title) <= rules.title_max and len(description) <= rules.description_max
    assert set(title.split()) <= set(words) and set(description.split()) <= set(words)
    assert check.passed and "title cut" in check.detail and "description cut" in check.detail


def test_fit_leaves_copy_within_limits_alone() -> None:
    title, description, check = get_channel("ebay").fit("Oak Cutting Board", "Solid oak.")
    assert (title, description) == ("Oak Cutting Board", "Solid oak.")
    assert check.detail == "within 80/4000 chars"


def test_truncate_words() -> None:
    assert truncate_words("alpha beta gamma", 10) == "alpha beta"
    assert truncate_words("alpha beta, gamma", 11) == "alpha beta"
    assert truncate_words("supercalifragilistic", 5) == "super"
    assert truncate_words("  spaced   out  ", 20) == "spaced out"


def test_amazon_flags_promotional_phrases_and_lowers_shouting() -> None:
    amazon = get_channel("amazon")
    assert amazon.style_problems("Best Seller Mug", "Free shipping today") == [
        "promotional phrase 'best seller'",
        "promotional phrase 'free shipping'",
    ]
    title, _, check = amazon.fit("AMAZING USB Desk Lamp", "Bright LED light.")
    assert title == "Amazing USB Desk Lamp"  # short codes like USB and LED stay
    assert "capitals lowered: AMAZING" in check.detail
    assert get_channel("ebay").style_problems("Best Seller Mug", "") == []


def test_unknown_channel_names_the_known_ones() -> None:
    with pytest.raises(UnknownChannel, match="unknown channel 'etsy'; known: amazon, default"):
        get_channel("etsy")
