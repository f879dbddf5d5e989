"""Title layouts learned from a tenant's accepted titles: the parts found in a title, the
consensus order, the gate against the default layout, the lookup by category, and their use
by the composed title, the reviewer, the job's identity, the workers' router and the trainer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from copyflow.consumer.adapters import AdapterRouter, parse_control
from copyflow.consumer.cache import cache_key
from copyflow.consumer.pipeline import Job
from copyflow.plugins.candidates import DEFAULT_LAYOUT, compose_title, title_parts
from copyflow.plugins.channels import get_channel
from copyflow.plugins.layouts import (
    WHOLE_TENANT,
    TitleLayouts,
    consensus,
    layout_keys,
    learn_layouts,
)
from copyflow.plugins.review import CopyReviewer
from copyflow.schemas import (
    AdapterReleased,
    LayoutsReleased,
    ModelInfo,
    Product,
    ProductEvent,
    TitleSlot,
)
from copyflow.trainer.examples import Example, ExampleStore
from copyflow.trainer.layouts import LayoutLedger, describe, learn

# The order of a shop whose titles read "Brand Gender Color Name Type".
SHOP: tuple[TitleSlot, ...] = ("brand", "gender", "color", "name", "type", "specs")
COLORS = ("Navy Blue", "Olive", "Maroon", "Black", "White", "Grey", "Beige")
NAMES = ("Slim Fit", "Regular Fit", "Checked", "Striped", "Printed", "Solid", "Linen")


def shirt(index: int, category: list[str] | None = None, kind: str = "Shirt") -> Product:
    name, color = NAMES[index % len(NAMES)], COLORS[index % len(COLORS)]
    return Product(
        product_id=f"s-{index}",
        title=f"{name.lower()} {kind.lower()}",
        brand="Harbor",
        category=["Apparel", "Shirts"] if category is None else category,
        attributes={"gender": "Men", "color": color},
    )


def shop_title(product: Product) -> str:
    """The title the shop's merchants accept: brand, gender, color, name, type."""
    name, kind = product.title.rsplit(" ", 1)
    color = product.attributes["color"]
    return f"Harbor Men {color} {name.title()} {kind.title()}"


def test_a_title_is_cut_into_its_parts_in_its_own_order() -> None:
    product = shirt(0)
    parts = title_parts(product, "Harbor Men Navy Blue Slim Fit Shirt")
    assert parts.order() == ("brand", "gender", "color", "name", "type")
    parts = title_parts(product, "Slim Fit Shirt Navy Blue")
    assert parts.order() == ("name", "type", "color")
    assert parts.added == {"brand": ["Harbor"], "gender": ["Men's"]}


def test_the_composed_title_follows_a_layout() -> None:
    product = shirt(0)
    assert compose_title(product, 150) == "Harbor Slim Fit Men's Navy Blue Shirt"
    assert compose_title(product, 150, SHOP) == "Harbor Men's Navy Blue Slim Fit Shirt"
    name_last: tuple[TitleSlot, ...] = ("type", "brand", "gender", "color", "name", "specs")
    assert compose_title(product, 150, name_last) == "Shirt Harbor Men's Navy Blue Slim Fit"


def test_the_consensus_is_the_majority_order_and_keeps_default_places_for_unseen_slots() -> None:
    orders: list[tuple[TitleSlot, ...]] = [("brand", "gender", "color", "name", "type")] * 3
    orders += [("brand", "name", "type")]
    assert consensus(orders) == SHOP
    # A cycle (a before b before c before a) is broken at its weakest majority.
    cycle: list[tuple[TitleSlot, ...]] = (
        [("name", "color")] * 3 + [("color", "type")] * 2 + [("type", "name")]
    )
    assert consensus(cycle) == ("brand", "name", "gender", "color", "type", "specs")
    # Slots no title holds go after the default slot before them (specs after the type).
    alone: list[tuple[TitleSlot, ...]] = [("type", "name")]
    assert consensus(alone) == ("brand", "type", "specs", "name", "gender", "color")
    # One stray title against many does not move a slot; slots seen together only in it don't
    # outrank slots that many titles order.
    many: list[tuple[TitleSlot, ...]] = [("name", "gender", "color", "type")] * 50 + [
        ("type", "name", "specs")
    ]
    assert consensus(many)[:5] == ("brand", "name", "gender", "color", "type")


def test_layouts_are_learned_per_category_and_lay_out_new_products_as_the_shop_does() -> None:
    accepted = [(shirt(i), shop_title(shirt(i))) for i in range(12)]
    layouts, report = learn_layouts(accepted, min_titles=5)
    assert layouts.layouts == {WHOLE_TENANT: SHOP}  # the category agrees with the whole shop
    category = next(row for row in report if row.key == "category:shirt")
    assert category.titles == 12 and category.kept
    assert category.learned_score > category.default_score
    new = shirt(40).model_copy(update={"product_id": "new"})
    assert layouts.for_product(new) == SHOP
    assert compose_title(new, 150, layouts.for_product(new)) == shop_title(new).replace(
        "Men", "Men's"
    )
    assert "category:shirt" in describe(report)


def test_a_category_that_follows_the_default_keeps_it_under_a_learned_shop_layout() -> None:
    shirts = [(shirt(i), shop_title(shirt(i))) for i in range(20)]
    watches = [
        (
            w := shirt(i, ["Accessories", "Watches"], "Watch"),
            compose_title(w, 150).replace("Men's", "Men"),
        )
        for i in range(8)
    ]
    layouts, _ = learn_layouts(shirts + watches, min_titles=5)
    assert layouts.layouts[WHOLE_TENANT] == SHOP
    watch = shirt(50, ["Accessories", "Watches"], "Watch")
    assert layouts.for_product(watch) == DEFAULT_LAYOUT
    assert layouts.for_product(shirt(50)) == SHOP


def test_nothing_is_learned_from_too_few_titles_or_from_titles_in_the_default_order() -> None:
    few = [(shirt(i), shop_title(shirt(i))) for i in range(4)]
    assert learn_layouts(few, min_titles=5)[0].layouts == {}
    default = [(shirt(i), compose_title(shirt(i), 150)) for i in range(12)]
    layouts, report = learn_layouts(default, min_titles=5)
    assert not layouts and report and not any(row.kept for row in report)
    assert TitleLayouts().version == layouts.version


def test_layouts_are_looked_up_by_category_else_product_type_else_the_whole_shop() -> None:
    assert layout_keys(shirt(0)) == ["category:shirt", WHOLE_TENANT]
    uncategorized = shirt(0, category=[])
    assert layout_keys(uncategorized) == ["type:shirt", WHOLE_TENANT]
    layouts = TitleLayouts({"type:shirt": SHOP})  # the type of a product with no category
    assert layouts.for_product(uncategorized) == SHOP
    assert layouts.for_product(shirt(0)) is None


def test_the_reviewer_composes_in_the_learned_layout_and_says_so() -> None:
    product = shirt(0)
    reviewed = CopyReviewer().review(product, get_channel("default"), None, None, "no answer", SHOP)
    assert reviewed.title_source == "composed"
    assert reviewed.title == "Harbor Men's Navy Blue Slim Fit Shirt"
    assert "learned layout" in reviewed.reason


def _event(tenant: str = "shop-a") -> ProductEvent:
    return ProductEvent(
        id="e-1",
        type="product.created",
        source="tests",
        time=datetime.now(UTC),
        tenant=tenant,
        data=shirt(0),
    )


def test_layouts_are_part_of_the_copys_identity() -> None:
    base = ModelInfo(base="m", revision="r", prompt_version="v3")
    plain = Job(_event(), "default")
    layouts = TitleLayouts({WHOLE_TENANT: SHOP})
    laid_out = Job(_event(), "default", None, layouts)
    assert plain.model_info(base).layouts_version is None
    assert laid_out.model_info(base).layouts_version == layouts.version
    assert plain.suggestion_id(base) != laid_out.suggestion_id(base)
    assert cache_key("p", plain, base) != cache_key("p", laid_out, base)
    assert laid_out.layout == SHOP


def test_control_events_are_told_apart_and_malformed_ones_refused() -> None:
    layouts = LayoutsReleased(tenant="shop-a", version="x", layouts={"*": list(SHOP)})
    assert parse_control(layouts.model_dump_json().encode()) == layouts
    adapter = AdapterReleased(
        adapter_version="v0001", base_model="m", base_revision="r", prompt_version="v3",
        location="/x",
    )  # fmt: skip
    assert parse_control(adapter.model_dump_json().encode()) == adapter
    with pytest.raises(ValidationError):
        parse_control(b'{"type": "layouts.released", "version": "x", "layouts": {"*": ["hat"]}}')


class _NoPool:
    pass


def test_the_router_serves_a_tenants_layouts_else_the_global_ones() -> None:
    router = AdapterRouter(_NoPool())  # type: ignore[arg-type]
    own = LayoutsReleased(tenant="shop-a", version="1", layouts={"*": list(SHOP)})
    every = LayoutsReleased(tenant=None, version="2", layouts={"category:shirt": list(SHOP)})
    router.apply_layouts(own)
    assert router.layouts("shop-a") == TitleLayouts({"*": SHOP})
    assert router.layouts("shop-b") is None
    router.apply_layouts(every)
    assert router.layouts("shop-b") == TitleLayouts({"category:shirt": SHOP})
    router.apply_layouts(own)  # the same again: no switch
    assert router.stats.layout_switches == 2
    router.apply_layouts(LayoutsReleased(tenant="shop-a", version="3", layouts={}))
    assert router.layouts("shop-a") == TitleLayouts({"category:shirt": SHOP})


def test_the_trainer_learns_a_scopes_layouts_and_announces_only_changes(tmp_path: Path) -> None:
    store = ExampleStore(tmp_path / "examples")
    examples = [
        Example(
            example_id=f"x-{i}",
            tenant="shop-a",
            channel="default",
            product=shirt(i),
            title=shop_title(shirt(i)),
            description="",
            action="edited" if i % 2 else "accepted",
        )
        for i in range(12)
    ]
    rejected = examples[0].model_copy(update={"example_id": "r", "action": "rejected"})
    store.add([*examples, rejected])
    event, report = learn(store, "shop-a", min_titles=5)
    assert event.tenant == "shop-a" and event.titles == 12
    assert event.layouts == {WHOLE_TENANT: list(SHOP)}
    assert {row.key for row in report if row.kept} == {"category:shirt", WHOLE_TENANT}
    ledger = LayoutLedger(tmp_path / "adapters")
    assert ledger.is_news(event)
    ledger.record(event)
    assert not ledger.is_news(learn(store, "shop-a", min_titles=5)[0])
    assert ledger.last("shop-a") == event
    nothing, _ = learn(store, None, min_titles=5)
    assert not nothing.layouts and not ledger.is_news(nothing)
