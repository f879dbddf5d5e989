"""The commercetools format: Subscription messages (ProductCreated, ProductPublished,
ProductDeleted, payloadNotIncluded through the fetch hook), one event per locale, attribute
value shapes, and the setName / setDescription write-back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from copyflow.plugins.catalog.base import (
    CatalogRecord,
    Decoded,
    FormatContext,
    InvalidEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.formats.commercetools import CommercetoolsFormat
from copyflow.schemas import ModelInfo, Product, ProductEvent, Suggestion
from tests.corpus import cases, corpus, example_records, wrong_types

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = "0f6a1d2e-3b4c-4d5e-8f90-a1b2c3d4e5f6"


def test_price_only_publish_gives_the_same_products() -> None:
    examples = cases("commercetools")
    fmt = CommercetoolsFormat()
    copy_change, price_change = fmt.decode(examples[2][0]), fmt.decode(examples[3][0])
    assert len(copy_change) == len(price_change) == 2
    for first, second in zip(copy_change, price_change, strict=True):
        assert isinstance(first, ProductEvent) and isinstance(second, ProductEvent)
        assert first.data == second.data
        assert first.data.content_hash() == second.data.content_hash()
        assert first.id != second.id


def test_name_and_redelivery() -> None:
    assert CommercetoolsFormat.name == "commercetools"
    assert CommercetoolsFormat.dedupe_events is True
    assert CommercetoolsFormat.keeps_content is False


# -- building messages ---------------------------------------------------------------------


def _projection(**changes: Any) -> dict[str, Any]:
    projection: dict[str, Any] = {
        "id": PRODUCT,
        "key": "rain-jacket",
        "version": 2,
        "productType": {"typeId": "product-type", "id": "pt-1"},
        "name": {"en": "Packable Rain Jacket", "de-DE": "Faltbare Regenjacke"},
        "description": {"en": "Waterproof shell.", "de-DE": "Wasserdichte Jacke."},
        "slug": {"en": "packable-rain-jacket"},
        "categories": [],
        "masterVariant": {
            "id": 1,
            "sku": "RJ-1",
            "prices": [{"id": "p1", "value": _money(5900)}],
            "attributes": [{"name": "brand", "value": "Cloudline"}],
        },
        "variants": [],
    }
    projection.update(changes)
    return projection


def _money(cents: int) -> dict[str, Any]:
    return {
        "type": "centPrecision",
        "currencyCode": "EUR",
        "centAmount": cents,
        "fractionDigits": 2,
    }


def _message(kind: str = "ProductCreated", **changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "notificationType": "Message",
        "projectKey": "rainwear",
        "id": "m-1",
        "version": 1,
        "sequenceNumber": 1,
        "resource": {"typeId": "product", "id": PRODUCT},
        "resourceVersion": 2,
        "resourceUserProvidedIdentifiers": {"key": "rain-jacket"},
        "type": kind,
        "createdAt": "2025-05-01T10:00:00.000Z",
        "lastModifiedAt": "2025-05-01T10:00:00.000Z",
    }
    if kind in ("ProductCreated", "ProductPublished"):
        message["productProjection"] = _projection()
    message.update(changes)
    return message


def _record(value: Any, timestamp_ms: int | None = None) -> CatalogRecord:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return CatalogRecord(value=raw, key=PRODUCT.encode(), timestamp_ms=timestamp_ms)


def _events(items: Any) -> list[ProductEvent]:
    assert all(isinstance(i, ProductEvent) for i in items)
    return list(items)


def _decode(message: Any, fmt: CommercetoolsFormat | None = None) -> list[ProductEvent]:
    return _events((fmt or CommercetoolsFormat()).decode(_record(message)))


def _with_attributes(*attributes: dict[str, Any], **changes: Any) -> dict[str, Any]:
    master = {"id": 1, "sku": "RJ-1", "attributes": list(attributes)}
    return _message(productProjection=_projection(masterVariant=master, **changes))


# -- messages ------------------------------------------------------------------------------


def test_created_gives_one_event_per_locale_of_the_name() -> None:
    events = _decode(_message())
    assert [e.data.locale for e in events] == ["en", "de-DE"]
    assert [e.data.title for e in events] == ["Packable Rain Jacket", "Faltbare Regenjacke"]
    assert [e.data.description for e in events] == ["Waterproof shell.", "Wasserdichte Jacke."]
    for event in events:
        assert event.id == "m-1"
        assert event.type == "product.created"
        assert event.source == "commercetools://rainwear"
        assert event.tenant == "rainwear"
        assert event.time == datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
        assert event.data.product_id == PRODUCT
        assert event.data.sku == "RJ-1"
        assert event.data.brand == "Cloudline"
        assert event.data.attributes == {}


def test_published_is_an_update() -> None:
    events = _decode(_message("ProductPublished", scope="All", removedImageUrls=[]))
    assert [e.type for e in events] == ["product.updated", "product.updated"]


def test_subscription_cloudevents_format_is_unwrapped() -> None:
    wrapped = {
        "specversion": "1.0",
        "id": "m-1",
        "type": "com.commercetools.product.message.ProductCreated",
        "source": "/rainwear/products",
        "subject": PRODUCT,
        "time": "2025-05-01T10:00:00.000Z",
        "dataref": "/rainwear/messages/m-1",
        "sequence": "1",
        "sequencetype": "Integer",
        "data": _message(),
    }
    assert _decode(wrapped) == _decode(_message())


def test_deleted_message_deletes_the_resource() -> None:
    items = CommercetoolsFormat().decode(_record(_message("ProductDeleted", removedImageUrls=[])))
    assert items == (ProductDeleted("m-1", "rainwear", PRODUCT, "commercetools://rainwear"),)


@pytest.mark.parametrize(
    "message",
    [
        _message("ProductSlugChanged", slug={"en": "jacket"}),
        _message("ProductPriceDiscountsSet", updatedPrices=[]),
        _message("ProductStateTransition"),
        _message("CategoryCreated", resource={"typeId": "category", "id": "c-1"}),
        {
            "notificationType": "ResourceUpdated",
            "projectKey": "rainwear",
            "resource": {"typeId": "product", "id": PRODUCT},
            "version": 3,
            "oldVersion": 2,
            "modifiedAt": "2025-05-01T10:00:00.000Z",
        },
        {
            "notificationType": "ResourceCreated",
            "projectKey": "rainwear",
            "resource": {"typeId": "subscription", "id": "s-1"},
        },
    ],
)
def test_other_messages_give_nothing(message: dict[str, Any]) -> None:
    assert CommercetoolsFormat().decode(_record(message)) == ()


def test_tenant_and_time_fall_back_to_context_and_record() -> None:
    message = _message()
    del message["projectKey"], message["createdAt"]
    fmt = CommercetoolsFormat(FormatContext(tenant="shop-x"))
    events = _events(fmt.decode(_record(message, timestamp_ms=1_746_093_600_000)))
    assert events[0].tenant == "shop-x"
    assert events[0].source == "commercetools://shop-x"
    assert events[0].time == datetime(2025, 5, 1, 10, 0, tzinfo=UTC)


def test_projection_id_falls_back_to_the_resource() -> None:
    projection = _projection()
    del projection["id"]
    assert _decode(_message(productProjection=projection))[0].data.product_id == PRODUCT


def test_locales_without_a_name_are_left_out() -> None:
    message = _message(productProjection=_projection(name={"en": "Rain Jacket", "fr": " "}))
    assert [e.data.locale for e in _decode(message)] == ["en"]


def test_html_description_becomes_text_and_keywords_split() -> None:
    projection = _projection(
        name={"en": "Rain Jacket"},
        description={"en": "<h2>Stay dry</h2><p>Taped seams &amp; hood.</p>"},
        metaKeywords={"en": "rain jacket, waterproof,  , hiking, rain jacket"},
    )
    (event,) = _decode(_message(productProjection=projection))
    assert event.data.description == "Stay dry\nTaped seams & hood."
    assert event.data.keywords == ["rain jacket", "waterproof", "hiking"]


def test_plain_description_keeps_its_text() -> None:
    projection = _projection(name={"en": "Rain Jacket"}, description={"en": "Sizes 5 < 6 &amp;"})
    (event,) = _decode(_message(productProjection=projection))
    assert event.data.description == "Sizes 5 < 6 &amp;"


def test_malformed_markup_in_a_description_does_not_crash() -> None:
    projection = _projection(name={"en": "Rain Jacket"}, description={"en": "<b>Dry</b> <![ x"})
    (event,) = _decode(_message(productProjection=projection))
    assert event.data.description == "Dry <![ x"


def test_attribute_value_shapes() -> None:
    message = _with_attributes(
        {"name": "brand", "value": {"key": "cl", "label": {"en": "Cloudline", "de-DE": "Wolke"}}},
        {"name": "fabric", "value": "nylon"},
        {"name": "weight-g", "value": 310},
        {"name": "rating", "value": 4.5},
        {"name": "layers", "value": 3.0},
        {"name": "hood", "value": True},
        {"name": "fit", "value": {"key": "regular", "label": "Regular fit"}},
        {"name": "color", "value": {"key": "navy", "label": {"en": "Navy", "de-DE": "Marine"}}},
        {"name": "care", "value": {"en": "Wash cold", "de-DE": "Kalt waschen"}},
        {"name": "en-only", "value": {"en": "Only English"}},
        {"name": "sizes", "value": ["S", "M", "L"]},
        {"name": "zips", "value": [{"key": "yk", "label": "YKK"}, {"key": "rr", "label": "Riri"}]},
        {"name": "features", "value": [{"en": "Hood", "de-DE": "Kapuze"}, {"en": "Pockets"}]},
        {"name": "released", "value": "2025-03-01"},
        {"name": "msrp", "value": _money(8900)},
        {"name": "prices", "value": [_money(100), _money(200)]},
        {"name": "related", "value": {"typeId": "product", "id": "p-2"}},
        {"name": "nested", "value": [[{"name": "a", "value": "b"}]]},
        {"name": "empty", "value": ""},
        {"name": "nothing", "value": None},
    )
    english, german = _decode(message)
    assert english.data.brand == "Cloudline"
    assert english.data.attributes == {
        "fabric": "nylon",
        "weight-g": "310",
        "rating": "4.5",
        "layers": "3",
        "hood": "true",
        "fit": "Regular fit",
        "color": "Navy",
        "care": "Wash cold",
        "en-only": "Only English",
        "sizes": "S, M, L",
        "zips": "YKK, Riri",
        "features": "Hood, Pockets",
        "released": "2025-03-01",
    }
    assert german.data.brand == "Wolke"
    assert german.data.attributes == {
        "fabric": "nylon",
        "weight-g": "310",
        "rating": "4.5",
        "layers": "3",
        "hood": "true",
        "fit": "Regular fit",
        "color": "Marine",
        "care": "Kalt waschen",
        "sizes": "S, M, L",
        "zips": "YKK, Riri",
        "features": "Kapuze",
        "released": "2025-03-01",
    }


def test_brand_attribute_option() -> None:
    message = _with_attributes(
        {"name": "brand", "value": "Not this"}, {"name": "manufacturer", "value": "Cloudline"}
    )
    fmt = CommercetoolsFormat(FormatContext(options={"brand_attribute": "manufacturer"}))
    event = _decode(message, fmt)[0]
    assert event.data.brand == "Cloudline"
    assert event.data.attributes == {"brand": "Not this"}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"brand_attribute": 7}, "brand_attribute"),
        ({"brand_attribute": ""}, "brand_attribute"),
        ({"brandattribute": "x"}, "brandattribute"),
    ],
)
def test_invalid_options_name_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        CommercetoolsFormat(FormatContext(options=options))


def test_expanded_categories_give_names_unexpanded_none() -> None:
    categories = [
        {"typeId": "category", "id": "c-1", "obj": {"id": "c-1", "name": {"en": "Jackets"}}},
        {"typeId": "category", "id": "c-2"},
        {"typeId": "category", "id": "c-3", "obj": {"id": "c-3", "name": {"de-DE": "Regen"}}},
    ]
    english, german = _decode(_message(productProjection=_projection(categories=categories)))
    assert english.data.category == ["Jackets"]
    assert german.data.category == ["Regen"]


def test_prices_never_reach_the_product() -> None:
    cheap, dear = _projection(), _projection()
    dear["masterVariant"] = {**dear["masterVariant"], "prices": [{"id": "p", "value": _money(1)}]}
    first = _decode(_message("ProductPublished", productProjection=cheap))
    second = _decode(_message("ProductPublished", productProjection=dear))
    assert [e.data for e in first] == [e.data for e in second]
    assert "5900" not in first[0].model_dump_json()


# -- payloadNotIncluded and the fetch hook -------------------------------------------------


def _left_out(kind: str = "ProductPublished") -> dict[str, Any]:
    message = _message(kind)
    del message["type"]
    message.pop("productProjection", None)
    message["payloadNotIncluded"] = {"reason": "Payload too large", "payloadType": kind}
    return message


def test_payload_not_included_without_a_hook_is_a_dead_letter_naming_the_setting() -> None:
    with pytest.raises(InvalidEvent) as info:
        CommercetoolsFormat().decode(_record(_left_out()))
    assert info.value.kind == "payload_not_included"
    assert "formats.fetch" in info.value.reason
    assert "Payload too large" in info.value.reason


def test_payload_not_included_is_fetched_through_the_hook() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        calls.append((name, dict(reference)))
        return _projection()

    fmt = CommercetoolsFormat(FormatContext(fetch=fetch))
    events = _events(fmt.decode(_record(_left_out())))
    assert calls == [
        (
            "commercetools",
            {
                "projectKey": "rainwear",
                "resource": {"typeId": "product", "id": PRODUCT},
                "resourceVersion": 2,
                "type": "ProductPublished",
            },
        )
    ]
    assert events == _decode(_message("ProductPublished"))


def test_a_fetched_whole_product_gives_its_current_or_staged_data() -> None:
    staged = _projection(name={"en": "Staged Name"})
    current = _projection(name={"en": "Current Name"})
    for projection in (staged, current):
        del projection["id"]

    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return {"id": PRODUCT, "version": 9, "masterData": {"current": current, "staged": staged}}

    fmt = CommercetoolsFormat(FormatContext(fetch=fetch))
    (published,) = _events(fmt.decode(_record(_left_out("ProductPublished"))))
    (created,) = _events(fmt.decode(_record(_left_out("ProductCreated"))))
    assert (published.data.title, published.type) == ("Current Name", "product.updated")
    assert (created.data.title, created.type) == ("Staged Name", "product.created")
    assert published.data.product_id == PRODUCT


def test_a_product_gone_since_gives_nothing() -> None:
    fmt = CommercetoolsFormat(FormatContext(fetch=lambda name, reference: None))
    assert fmt.decode(_record(_left_out())) == ()


def test_a_left_out_deletion_needs_no_fetch() -> None:
    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        raise AssertionError("not called")

    for fmt in (CommercetoolsFormat(), CommercetoolsFormat(FormatContext(fetch=fetch))):
        items = fmt.decode(_record(_left_out("ProductDeleted")))
        assert items == (ProductDeleted("m-1", "rainwear", PRODUCT, "commercetools://rainwear"),)


def test_a_left_out_message_of_another_type_gives_nothing() -> None:
    assert CommercetoolsFormat().decode(_record(_left_out("ProductSlugChanged"))) == ()


def test_a_hook_that_raises_is_a_fetch_dead_letter() -> None:
    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        raise ConnectionError("commercetools API unreachable")

    with pytest.raises(InvalidEvent) as info:
        CommercetoolsFormat(FormatContext(fetch=fetch)).decode(_record(_left_out()))
    assert info.value.kind == "fetch"
    assert "ConnectionError: commercetools API unreachable" in info.value.reason


def test_a_hook_that_returns_no_object_is_a_fetch_dead_letter() -> None:
    fmt = CommercetoolsFormat(FormatContext(fetch=lambda name, reference: ["x"]))  # type: ignore[arg-type, return-value]
    with pytest.raises(InvalidEvent) as info:
        fmt.decode(_record(_left_out()))
    assert info.value.kind == "fetch"
    assert "list" in info.value.reason


def test_an_invalid_fetched_projection_is_a_schema_dead_letter() -> None:
    fmt = CommercetoolsFormat(FormatContext(fetch=lambda name, reference: {"name": "Jacket"}))
    with pytest.raises(InvalidEvent) as info:
        fmt.decode(_record(_left_out()))
    assert info.value.kind == "schema"


# -- write-back ----------------------------------------------------------------------------


def _suggestion(locale: str, description: str = "Packs into its own pocket.") -> Suggestion:
    return Suggestion(
        suggestion_id=uuid.UUID(int=1),
        product_id=PRODUCT,
        tenant="rainwear",
        source_event_id="m-1",
        channel="default",
        title="Cloudline Packable Rain Jacket",
        description=description,
        model=ModelInfo(base="m", revision="r", prompt_version="v1"),
        checks=[],
        fallback_used=False,
        latency_ms=1.0,
        content_hash="h",
        input=Product(product_id=PRODUCT, title="Packable Rain Jacket", locale=locale),
    )


def test_encode_update_sets_name_and_description_of_the_locale() -> None:
    document = CommercetoolsFormat().encode_update(_suggestion("de-DE"))
    assert document is not None
    assert json.loads(document) == {
        "productId": PRODUCT,
        "locale": "de-DE",
        "actions": [
            {
                "action": "setName",
                "name": {"de-DE": "Cloudline Packable Rain Jacket"},
                "staged": True,
            },
            {
                "action": "setDescription",
                "description": {"de-DE": "Packs into its own pocket."},
                "staged": True,
            },
        ],
    }


def test_encode_update_without_a_description_sets_the_name_only() -> None:
    document = CommercetoolsFormat().encode_update(_suggestion("en", description=""))
    assert document is not None
    assert json.loads(document)["actions"] == [
        {"action": "setName", "name": {"en": "Cloudline Packable Rain Jacket"}, "staged": True}
    ]


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"\xff\xfe\x00garbage", "decode"),
        (b'{"notificationType": "Message", "id": ', "decode"),
        (b"[]", "schema"),
        (b"{}", "schema"),
        (b'{"notificationType": 7}', "schema"),
        (json.dumps(_message(id=None)).encode(), "schema"),
        (json.dumps(_message(id=[1])).encode(), "schema"),
        (json.dumps(_message(resource="product")).encode(), "schema"),
        (json.dumps(_message(type=None)).encode(), "schema"),
        (json.dumps(_message(productProjection=None)).encode(), "schema"),
        (json.dumps(_message(productProjection=_projection(name="Jacket"))).encode(), "schema"),
        (json.dumps(_message(productProjection=_projection(name={}))).encode(), "schema"),
        (json.dumps(_message(productProjection=_projection(description=5))).encode(), "schema"),
        (json.dumps(_message(productProjection=_projection(masterVariant=[]))).encode(), "schema"),
        (json.dumps(_message(createdAt="yesterday")).encode(), "schema"),
        (json.dumps(_message(payloadNotIncluded="big")).encode(), "schema"),
    ],
)
def test_bad_input_is_an_invalid_event(value: bytes, kind: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        CommercetoolsFormat().decode(CatalogRecord(value=value))
    assert info.value.kind == kind
    assert info.value.reason


def test_too_many_attributes_or_too_long_a_title_is_a_schema_dead_letter() -> None:
    many = _with_attributes(*({"name": f"a{i}", "value": "x"} for i in range(201)))
    long = _message(productProjection=_projection(name={"en": "x" * 1001}))
    for message in (many, long):
        with pytest.raises(InvalidEvent) as info:
            CommercetoolsFormat().decode(_record(message))
        assert info.value.kind == "schema"


def test_no_value_is_a_decode_dead_letter() -> None:
    with pytest.raises(InvalidEvent) as info:
        CommercetoolsFormat().decode(CatalogRecord(value=None, key=b"x"))
    assert info.value.kind == "decode"


def test_the_bad_input_corpus_gives_invalid_events_only() -> None:
    fmt = CommercetoolsFormat()
    for what, record in corpus(example_records("commercetools")):
        with pytest.raises(InvalidEvent) as info:
            fmt.decode(record)
        assert info.value.reason, what


def test_wrong_types_anywhere_never_crash() -> None:
    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return _projection()

    tried = 0
    for fmt in (CommercetoolsFormat(), CommercetoolsFormat(FormatContext(fetch=fetch))):
        for example in example_records("commercetools"):
            if not example.value or not example.value.startswith(b"{"):
                continue
            for what, record in wrong_types(example):
                tried += 1
                try:
                    items: tuple[Decoded, ...] | list[Decoded] = tuple(fmt.decode(record))
                except InvalidEvent:
                    continue
                assert all(isinstance(i, ProductEvent | ProductDeleted) for i in items), what
    assert tried > 1000


def test_a_name_in_too_many_locales_is_a_schema_dead_letter() -> None:
    names = {f"x{i:03d}": "Rain Jacket" for i in range(101)}
    with pytest.raises(InvalidEvent) as info:
        CommercetoolsFormat().decode(_record(_message(productProjection=_projection(name=names))))
    assert info.value.kind == "schema"
    assert "101 locales" in info.value.reason


def test_categories_beyond_the_products_limit_are_left_out() -> None:
    categories = [
        {"typeId": "category", "id": f"c{i}", "obj": {"name": {"en": f"Category {i}"}}}
        for i in range(20)
    ]
    message = _message(productProjection=_projection(name={"en": "Jacket"}, categories=categories))
    (event,) = _decode(message)
    assert event.data.category == [f"Category {i}" for i in range(16)]
