"""The Shopify format: products/create, update and delete webhooks from a webhook-to-Kafka
bridge (headers) or in the Amazon EventBridge envelope, and the productUpdate write-back."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from copyflow.plugins.catalog import make_format
from copyflow.plugins.catalog.base import (
    CatalogRecord,
    Decoded,
    FormatContext,
    InvalidEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.formats.shopify import MUTATION, ShopifyFormat
from copyflow.schemas import ModelInfo, Product, ProductEvent, Suggestion
from tests.corpus import cases

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ["shopify", "shopify-eventbridge"]
SHOP = "birch-and-brass.myshopify.com"


@pytest.mark.parametrize(
    ("name", "copy_change", "price_change"), [("shopify", 3, 5), ("shopify-eventbridge", 1, 2)]
)
def test_price_only_update_gives_the_same_product(
    name: str, copy_change: int, price_change: int
) -> None:
    examples = cases(name)
    first = ShopifyFormat().decode(examples[copy_change][0])[0]
    second = ShopifyFormat().decode(examples[price_change][0])[0]
    assert isinstance(first, ProductEvent) and isinstance(second, ProductEvent)
    assert first.id != second.id
    assert first.data == second.data
    assert first.data.content_hash() == second.data.content_hash()


def test_redelivered_webhook_decodes_to_the_same_event() -> None:
    examples = cases("shopify")
    original, retry = examples[3][0], examples[4][0]
    assert original.header("X-Shopify-Webhook-Id") != retry.header("X-Shopify-Webhook-Id")
    assert ShopifyFormat().decode(original) == ShopifyFormat().decode(retry)
    assert ShopifyFormat.dedupe_events is True  # the worker drops the second one


def test_registered_by_name() -> None:
    assert isinstance(make_format("shopify"), ShopifyFormat)


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "tag"), [("fr-CA", "fr-CA"), ("de_DE", "de-DE"), ("nl", "nl")])
def test_locale_option(given: str, tag: str) -> None:
    fmt = ShopifyFormat(FormatContext(options={"locale": given}))
    (event,) = fmt.decode(_record(_product()))
    assert isinstance(event, ProductEvent) and event.data.locale == tag


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"locale": "English"}, "shopify option 'locale'"),
        ({"locale": 5}, "shopify option 'locale'"),
        ({"locale": ""}, "shopify option 'locale'"),
        ({"currency": "USD"}, "unknown option"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ShopifyFormat(FormatContext(options=options))


# -- building records --------------------------------------------------------------------


def _product(**changes: Any) -> dict[str, Any]:
    product: dict[str, Any] = {
        "id": 632910392,
        "title": "Brass Desk Lamp",
        "body_html": "<p>Solid brass lamp with a <em>linen</em> shade.</p>",
        "vendor": "Birch & Brass",
        "product_type": "Lamps",
        "handle": "brass-desk-lamp",
        "tags": "brass, lighting, desk",
        "status": "active",
        "created_at": "2025-03-01T10:00:00-05:00",
        "updated_at": "2025-03-01T10:00:00-05:00",
        "admin_graphql_api_id": "gid://shopify/Product/632910392",
        "variants": [
            {
                "id": 808950810,
                "product_id": 632910392,
                "title": "Default Title",
                "price": "129.00",
                "sku": "BB-LAMP-01",
                "option1": "Default Title",
                "option2": None,
                "option3": None,
                "inventory_quantity": 7,
            }
        ],
        "options": [{"name": "Title", "position": 1, "values": ["Default Title"]}],
        "images": [],
    }
    product.update(changes)
    return product


def _headers(**changes: str | None) -> dict[str, str | None]:
    headers: dict[str, str | None] = {
        "X-Shopify-Topic": "products/create",
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Event-Id": "ev-1",
        "X-Shopify-Webhook-Id": "wh-1",
        "X-Shopify-Triggered-At": "2025-03-01T15:00:01Z",
        "X-Shopify-API-Version": "2025-01",
    }
    headers.update(changes)
    return headers


def _record(body: Any, **headers: str | None) -> CatalogRecord:
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    pairs = tuple((k, v.encode()) for k, v in _headers(**headers).items() if v is not None)
    return CatalogRecord(value=value, headers=pairs, timestamp_ms=1740841200000)


def _envelope(body: Any, **metadata: str | None) -> CatalogRecord:
    meta = {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-SHA256": "c2lnbmF0dXJl",
        **_headers(**metadata),
    }
    envelope = {
        "version": "0",
        "id": "0d7a6f1e-aaaa-4bbb-8ccc-000000000001",
        "detail-type": "shopifyWebhook",
        "source": "aws.partner/shopify.com/1234567/products",
        "account": "123456789012",
        "time": "2025-03-01T15:00:02Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"payload": body, "metadata": {k: v for k, v in meta.items() if v is not None}},
    }
    return CatalogRecord(value=json.dumps(envelope).encode())


def _decode(record: CatalogRecord, tenant: str = "default") -> Sequence[Decoded]:
    return ShopifyFormat(FormatContext(tenant=tenant)).decode(record)


def _one(record: CatalogRecord, tenant: str = "default") -> ProductEvent:
    items = _decode(record, tenant)
    assert len(items) == 1 and isinstance(items[0], ProductEvent)
    return items[0]


def _kind(record: CatalogRecord) -> str:
    with pytest.raises(InvalidEvent) as caught:
        _decode(record)
    return caught.value.kind


# -- the bridge's headers ----------------------------------------------------------------


def test_create_webhook_maps_the_product() -> None:
    event = _one(_record(_product()))
    assert event.model_dump(mode="json") == {
        "id": "ev-1",
        "type": "product.created",
        "source": f"shopify://{SHOP}",
        "time": "2025-03-01T15:00:01Z",
        "tenant": SHOP,
        "schema_version": "1",
        "data": {
            "product_id": "632910392",
            "sku": "BB-LAMP-01",
            "locale": "en-US",
            "title": "Brass Desk Lamp",
            "description": "Solid brass lamp with a linen shade.",
            "brand": "Birch & Brass",
            "category": ["Lamps"],
            "attributes": {},
            "keywords": ["brass", "lighting", "desk"],
            "channels": ["default"],
        },
    }


def test_update_webhook_and_lowercase_header_names() -> None:
    record = _record(_product())
    record = replace(
        record,
        headers=tuple(
            (k.lower(), b"products/update" if k == "X-Shopify-Topic" else v)
            for k, v in record.headers
        ),
    )
    event = _one(record)
    assert (event.type, event.id, event.tenant) == ("product.updated", "ev-1", SHOP)


def test_options_become_attributes_and_several_variants_no_sku() -> None:
    options = [
        {"name": "Size", "position": 1, "values": ["S", "M", "L"]},
        {"name": "Color", "position": 2, "values": ["Sand"]},
        {"name": "Pack", "position": 3, "values": [2, 4]},
        {"name": "Empty", "position": 4, "values": []},
    ]
    variants = [{"id": 1, "sku": "A", "price": "1.00"}, {"id": 2, "sku": "B", "price": "2.00"}]
    data = _one(_record(_product(options=options, variants=variants))).data
    assert data.attributes == {"Size": "S, M, L", "Color": "Sand", "Pack": "2, 4"}
    assert data.sku is None


def test_a_real_title_option_is_kept() -> None:
    options = [{"name": "Title", "values": ["Short", "Long"]}]
    assert _one(_record(_product(options=options))).data.attributes == {"Title": "Short, Long"}


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"vendor": ""}, "brand", None),
        ({"vendor": None}, "brand", None),
        ({"product_type": " "}, "category", []),
        ({"tags": ""}, "keywords", []),
        ({"tags": ["a", " b ", "a"]}, "keywords", ["a", "b"]),
        ({"body_html": None}, "description", ""),
        ({"body_html": "Fish &amp; chips"}, "description", "Fish & chips"),
        ({"body_html": "<p>One</p><script>x()</script><p>Two</p>"}, "description", "One\nTwo"),
        ({"body_html": "<![ broken"}, "description", "<![ broken"),
        ({"variants": []}, "sku", None),
        ({"variants": None}, "sku", None),
        ({"variants": [{"id": 1, "sku": None}]}, "sku", None),
        ({"variants": [{"id": 1, "sku": "  "}]}, "sku", None),
        ({"options": None}, "attributes", {}),
        ({"id": "632910392"}, "product_id", "632910392"),
    ],
)
def test_field_shapes(changes: dict[str, Any], field: str, value: Any) -> None:
    assert getattr(_one(_record(_product(**changes))).data, field) == value


def test_price_stock_and_timestamps_do_not_change_the_product() -> None:
    before = _one(_record(_product())).data
    changed = _product(updated_at="2025-03-09T08:00:00-05:00")
    changed["variants"][0].update(price="99.00", compare_at_price="129.00", inventory_quantity=0)
    assert _one(_record(changed, **{"X-Shopify-Topic": "products/update"})).data == before


def test_event_id_falls_back_to_webhook_id_then_value_hash() -> None:
    assert _one(_record(_product(), **{"X-Shopify-Event-Id": None})).id == "wh-1"
    record = _record(_product(), **{"X-Shopify-Event-Id": None, "X-Shopify-Webhook-Id": None})
    assert _one(record).id == hashlib.sha256(record.value or b"").hexdigest()
    assert _one(record).id == _one(record).id


def test_tenant_and_source_fall_back_to_the_context() -> None:
    event = _one(_record(_product(), **{"X-Shopify-Shop-Domain": None}), tenant="acme")
    assert (event.tenant, event.source) == ("acme", "shopify://acme")


def test_time_falls_back_to_updated_at_then_record_time() -> None:
    record = _record(_product(), **{"X-Shopify-Triggered-At": None})
    assert _one(record).time == datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
    record = _record(_product(updated_at=None), **{"X-Shopify-Triggered-At": None})
    assert _one(record).time == datetime(2025, 3, 1, 15, 0, tzinfo=UTC)  # timestamp_ms


def test_delete_webhook() -> None:
    record = _record({"id": 632910392}, **{"X-Shopify-Topic": "products/delete"})
    assert _decode(record) == (ProductDeleted("ev-1", SHOP, "632910392", f"shopify://{SHOP}"),)
    gone = _record({"id": None}, **{"X-Shopify-Topic": "products/delete"})
    assert _kind(gone) == "schema"


@pytest.mark.parametrize(
    "topic", ["orders/create", "inventory_levels/update", "collections/update", "app/uninstalled"]
)
def test_other_topics_give_nothing(topic: str) -> None:
    assert _decode(_record(b"not even JSON", **{"X-Shopify-Topic": topic})) == ()
    assert _decode(_envelope({"id": 1}, **{"X-Shopify-Topic": topic})) == ()


def test_missing_topic_is_schema_naming_the_header() -> None:
    with pytest.raises(InvalidEvent, match="X-Shopify-Topic") as caught:
        _decode(_record(_product(), **{"X-Shopify-Topic": None}))
    assert caught.value.kind == "schema"
    with pytest.raises(InvalidEvent, match="X-Shopify-Topic"):
        _decode(_envelope(_product(), **{"X-Shopify-Topic": None}))


@pytest.mark.parametrize(
    "changes",
    [
        {"id": None},
        {"title": None},
        {"title": 42},
        {"title": {"en": "Lamp"}},
        {"body_html": ["<p>"]},
        {"vendor": 3},
        {"tags": {"a": 1}},
        {"tags": [1, 2]},
        {"options": {"name": "Size"}},
        {"options": [{"values": ["S"]}]},
        {"options": [{"name": "Size", "values": "S, M"}]},
        {"options": [{"name": "Size", "values": [{"v": 1}]}]},
        {"variants": {"sku": "A"}},
        {"variants": ["A"]},
        {"options": [{"name": f"o{i}", "values": ["v"]} for i in range(201)]},
        {"options": [{"name": "Size", "values": ["x" * 1_001]}]},
        {"body_html": "x" * 20_001},
    ],
)
def test_invalid_products_are_schema(changes: dict[str, Any]) -> None:
    assert _kind(_record(_product(**changes))) == "schema"


# -- the EventBridge envelope ------------------------------------------------------------


def test_eventbridge_envelope_gives_the_same_event_as_the_bridge() -> None:
    assert _one(_envelope(_product())) == _one(_record(_product()))


def test_eventbridge_metadata_names_are_case_insensitive_and_time_falls_back() -> None:
    record = _envelope(_product(), **{"X-Shopify-Triggered-At": None})
    document = json.loads(record.value or b"")
    metadata = document["detail"]["metadata"]
    metadata["x-shopify-topic"] = metadata.pop("X-Shopify-Topic")
    event = _one(replace(record, value=json.dumps(document).encode()))
    assert event.time == datetime(2025, 3, 1, 15, 0, 2, tzinfo=UTC)  # the envelope's time
    assert event.tenant == SHOP


def test_eventbridge_delete() -> None:
    record = _envelope({"id": 632910392}, **{"X-Shopify-Topic": "products/delete"})
    assert _decode(record) == (ProductDeleted("ev-1", SHOP, "632910392", f"shopify://{SHOP}"),)


@pytest.mark.parametrize(
    "detail",
    [
        "text",
        {"payload": None, "metadata": {"X-Shopify-Topic": "products/create"}},
        {"payload": [], "metadata": {"X-Shopify-Topic": "products/create"}},
        {"payload": {"id": 1, "title": "T"}, "metadata": ["X-Shopify-Topic"]},
        {"payload": {"id": 1, "title": "T"}, "metadata": {"X-Shopify-Topic": 5}},
        {"payload": {"id": 1, "title": "T"}},
    ],
)
def test_broken_envelopes_are_schema(detail: Any) -> None:
    value = {"version": "0", "detail-type": "shopifyWebhook", "detail": detail}
    assert _kind(CatalogRecord(value=json.dumps(value).encode())) == "schema"


# -- write-back --------------------------------------------------------------------------


def _suggestion(
    product_id: str = "632910392", description: str = "Solid brass.\nLinen shade & switch."
) -> Suggestion:
    return Suggestion(
        suggestion_id=uuid.UUID(int=3),
        product_id=product_id,
        tenant=SHOP,
        source_event_id="ev-1",
        channel="default",
        title="Birch & Brass Solid Brass Desk Lamp",
        description=description,
        model=ModelInfo(base="m", revision="r", prompt_version="v1"),
        checks=[],
        fallback_used=False,
        latency_ms=1.0,
        content_hash="h",
        input=Product(product_id=product_id, title="Brass Desk Lamp"),
    )


def test_encode_update_is_a_product_update_mutation() -> None:
    document = ShopifyFormat().encode_update(_suggestion())
    assert document is not None
    assert json.loads(document) == {
        "query": "mutation productUpdate($product: ProductUpdateInput!) { productUpdate("
        "product: $product) { product { id } userErrors { field message } } }",
        "variables": {
            "product": {
                "id": "gid://shopify/Product/632910392",
                "title": "Birch & Brass Solid Brass Desk Lamp",
                "descriptionHtml": "<p>Solid brass.</p><p>Linen shade &amp; switch.</p>",
            }
        },
    }
    assert json.loads(document)["query"] == MUTATION


def test_encode_update_keeps_a_gid_and_leaves_an_empty_description_alone() -> None:
    gid = "gid://shopify/Product/1"
    document = ShopifyFormat().encode_update(_suggestion(gid, description=""))
    assert document is not None
    assert json.loads(document)["variables"] == {
        "product": {"id": gid, "title": "Birch & Brass Solid Brass Desk Lamp"}
    }


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", STREAMS)
def test_bad_input_gives_invalid_event_only(name: str) -> None:
    examples = [record for record, _ in cases(name)][:3]
    values: list[bytes | None] = [
        b"\x00\x9f\x92\x96garbage",
        b"",
        None,
        b"[]",
        b'"text"',
        b"null",
        b"[" * 10_000,
        json.dumps(_product(id=True)).encode(),
        json.dumps(_product(title=["a"])).encode(),
        json.dumps(_product(options=[{"name": None, "values": None}])).encode(),
    ]
    tried = 0
    for example in examples:
        value = example.value or b""
        for bad in [*values, value[: len(value) // 2], value[:-1], value + b"}"]:
            tried += 1
            with pytest.raises(InvalidEvent):
                ShopifyFormat().decode(replace(example, value=bad))
    assert tried == 39


def test_wrong_types_in_every_field_never_crash() -> None:
    document = _product()
    wrongs: list[Any] = [None, 7, True, "x", [], {}, [1, {"a": None}], 1e308]
    tried = 0
    for key in list(document):
        for wrong in wrongs:
            body = copy.deepcopy(document)
            body[key] = wrong
            tried += 1
            with contextlib.suppress(InvalidEvent):
                ShopifyFormat().decode(_record(body))
    assert tried == len(document) * 8
