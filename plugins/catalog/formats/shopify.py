"""Shopify products/create, products/update and products/delete webhooks (the REST Admin API
Product resource), as a webhook-to-Kafka bridge delivers them (the HTTP headers as record
headers) or in the Amazon EventBridge envelope (detail.payload, detail.metadata).

Prices, inventory and timestamps of the product are not read: a price-only update gives the
same Product. Write-back is a GraphQL Admin API productUpdate request body."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from copyflow.plugins.catalog.base import (
    CatalogFormat,
    CatalogRecord,
    Decoded,
    FormatContext,
    InvalidEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.formats.common import (
    check_options,
    expect_object,
    header_text,
    html_to_text,
    locale_tag,
    parse_json,
    product_event,
    record_time,
    required_text,
    split_tags,
    text_field,
    text_to_html,
)
from copyflow.schemas import Suggestion

_OPTIONS = frozenset({"locale"})
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_TOPICS = frozenset({"products/create", "products/update", "products/delete"})
_MAX_ID = 256
MUTATION = (
    "mutation productUpdate($product: ProductUpdateInput!) { productUpdate(product: $product) "
    "{ product { id } userErrors { field message } } }"
)

Metadata = Callable[[str], str | None]


class ShopifyFormat(CatalogFormat):
    name = "shopify"
    # Shopify delivers at least once: a retried webhook keeps its X-Shopify-Event-Id.
    dedupe_events = True

    def __init__(self, context: FormatContext | None = None) -> None:
        super().__init__(context)
        options = self.context.options
        check_options(self.name, options, _OPTIONS)
        locale = options.get("locale", "en-US")
        tag = locale_tag(locale) if isinstance(locale, str) else ""
        if not _LOCALE.match(tag):
            raise ValueError(f"shopify option 'locale': {locale!r} is not a BCP 47 tag like en-US")
        self.locale = tag

    def decode(self, record: CatalogRecord) -> Sequence[Decoded]:
        meta, body, sent = _unwrap(record)
        topic = meta("X-Shopify-Topic")
        if topic is None:
            raise InvalidEvent(
                "schema", "X-Shopify-Topic: missing (a record header, or detail.metadata)"
            )
        if topic.strip() not in _TOPICS:
            return ()  # orders, inventory levels, ...: nothing about product copy
        payload = expect_object(body(), "payload")
        shop = meta("X-Shopify-Shop-Domain")
        tenant = shop or self.context.tenant
        source = f"shopify://{tenant}"
        event_id = (
            meta("X-Shopify-Event-Id")
            or meta("X-Shopify-Webhook-Id")
            or hashlib.sha256(record.value or b"").hexdigest()
        )
        product_id = required_text(payload, "id", "payload").strip()
        if len(event_id) > _MAX_ID or len(tenant) > _MAX_ID or len(product_id) > _MAX_ID:
            raise InvalidEvent("schema", f"event id, shop domain or product id over {_MAX_ID}")
        if topic.strip() == "products/delete":
            return (ProductDeleted(event_id, tenant, product_id, source),)
        time = (
            meta("X-Shopify-Triggered-At")
            or sent
            or text_field(payload, "updated_at", "payload")
            or record_time(record)
        )
        return (
            product_event(
                id=event_id,
                updated=topic.strip() == "products/update",
                source=source,
                time=time,
                tenant=tenant,
                product=self._product(payload, product_id),
            ),
        )

    def _product(self, payload: Mapping[str, Any], product_id: str) -> dict[str, Any]:
        product: dict[str, Any] = {"product_id": product_id, "locale": self.locale}
        title = _string(payload, "title")
        if title is not None:
            product["title"] = title
        product["description"] = html_to_text(_string(payload, "body_html") or "")
        vendor = _string(payload, "vendor")
        product["brand"] = vendor if vendor and vendor.strip() else None
        kind = _string(payload, "product_type")
        product["category"] = [kind] if kind and kind.strip() else []
        tags = payload.get("tags")
        if not (tags is None or isinstance(tags, str) or _strings(tags)):
            raise InvalidEvent("schema", "payload.tags: expected a string or strings")
        product["keywords"] = split_tags(tags or "")
        product["attributes"] = _attributes(payload.get("options"))
        variants = payload.get("variants")
        if variants is not None and not isinstance(variants, list):
            raise InvalidEvent("schema", "payload.variants: expected a list")
        if variants and len(variants) == 1:
            sku = text_field(expect_object(variants[0], "payload.variants[0]"), "sku", "variant")
            product["sku"] = sku.strip() if sku and sku.strip() else None
        return product

    def encode_update(self, suggestion: Suggestion) -> bytes | None:
        product_id = suggestion.product_id
        gid = (
            product_id if product_id.startswith("gid://") else f"gid://shopify/Product/{product_id}"
        )
        product = {"id": gid, "title": suggestion.title}
        if suggestion.description:  # an empty one would erase the product's description
            product["descriptionHtml"] = text_to_html(suggestion.description)
        document = {"query": MUTATION, "variables": {"product": product}}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _unwrap(record: CatalogRecord) -> tuple[Metadata, Callable[[], Any], str | None]:
    """(header lookup, the webhook body, the envelope's time): a bridge's record carries the
    webhook headers; an EventBridge event carries them in detail.metadata."""
    if record.header("X-Shopify-Topic") is not None:

        def header(name: str) -> str | None:
            value = header_text(record, name)
            return value.strip() if value and value.strip() else None

        return header, lambda: _body(record), None
    document = _body(record)
    if not (isinstance(document, dict) and "detail-type" in document and "detail" in document):
        return lambda name: None, lambda: document, None
    detail = expect_object(document["detail"], "detail")
    metadata = detail.get("metadata")
    found: dict[str, str] = {}
    for name, value in expect_object(metadata or {}, "detail.metadata").items():
        if value is not None and not isinstance(value, str):
            raise InvalidEvent("schema", f"detail.metadata.{name}: expected a string")
        if value and value.strip():
            found[name.lower()] = value.strip()
    sent = text_field(document, "time", "envelope")
    return lambda name: found.get(name.lower()), lambda: detail.get("payload"), sent


def _body(record: CatalogRecord) -> Any:
    if record.value is None:
        raise InvalidEvent("decode", "empty message (no value)")
    return parse_json(record.value, "value")


def _string(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidEvent("schema", f"payload.{name}: expected a string")
    return value


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _attributes(options: Any) -> dict[str, str]:
    """Each option's name -> its values; Shopify's placeholder Title/Default Title is no
    attribute of the product."""
    if options is None:
        return {}
    if not isinstance(options, list):
        raise InvalidEvent("schema", "payload.options: expected a list")
    found: dict[str, str] = {}
    for index, item in enumerate(options):
        what = f"payload.options[{index}]"
        option = expect_object(item, what)
        name = required_text(option, "name", what).strip()
        values = option.get("values")
        if values is None:
            values = []
        if not isinstance(values, list) or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in values
        ):
            raise InvalidEvent("schema", f"{what}.values: expected a list of strings")
        texts = [str(v) for v in values if str(v).strip()]
        if not texts or (name == "Title" and texts == ["Default Title"]):
            continue
        found[name] = ", ".join(texts)
    return found
