from __future__ import annotations

from plugins.fallback import template_copy
from plugins.validators import check_not_degenerate
from schemas import Product


def test_degenerate_text_fails() -> None:
    looping = "a wide-brimmed waist, " * 10
    assert not check_not_degenerate(looping).passed
    assert "repeat" in check_not_degenerate(looping).detail
    assert not check_not_degenerate("   ").passed


def test_ordinary_copy_passes() -> None:
    text = "Acme Blue Mug\nA blue mug from Acme for coffee or tea at home."
    assert check_not_degenerate(text).passed


def test_template_copy_uses_only_product_fields() -> None:
    product = Product(
        product_id="p",
        title="mug  blue",
        brand="Acme",
        attributes={"color": "blue", "capacity": "350 ml"},
    )
    title, description = template_copy(product)
    assert title == "Acme mug blue"
    assert description == "Acme mug blue. capacity: 350 ml; color: blue."


def test_template_copy_keeps_a_given_description_and_brand_in_title() -> None:
    product = Product(product_id="p", title="Acme mug", brand="acme", description=" Holds tea. ")
    assert template_copy(product) == ("Acme mug", "Holds tea.")
