"""commercetools Subscription messages for products, as a subscription delivers them to a
Kafka (Confluent) destination: the "Message" payload (notificationType "Message") with
ProductCreated, ProductPublished and ProductDeleted, optionally in the subscription's
CloudEvents format, and payloadNotIncluded messages (fetched through the fetch hook).

Each locale of the product's name gives one ProductEvent. Write-back is the product's
update actions setName / setDescription."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
    locale_tag,
    product_event,
    record_json,
    record_time,
    required_text,
    split_tags,
    text_field,
    text_or_html_to_text,
)
from copyflow.schemas import Suggestion

_OPTIONS = frozenset({"brand_attribute"})
_WITH_PROJECTION = frozenset({"ProductCreated", "ProductPublished"})
# A name in more locales than this is not a real product (and would fan out without bound).
_MAX_LOCALES = 100
_MAX_CATEGORIES = 16  # Product.category's limit; more categories only lose the tail


class CommercetoolsFormat(CatalogFormat):
    name = "commercetools"
    # Subscriptions deliver at least once: a redelivered message keeps its id.
    dedupe_events = True

    def __init__(self, context: FormatContext | None = None) -> None:
        super().__init__(context)
        options = self.context.options
        check_options(self.name, options, _OPTIONS)
        brand = options.get("brand_attribute", "brand")
        if not isinstance(brand, str) or not brand.strip():
            raise ValueError("commercetools option 'brand_attribute': expected an attribute name")
        self.brand_attribute = brand

    def decode(self, record: CatalogRecord) -> Sequence[Decoded]:
        message = expect_object(record_json(record), "value")
        if "specversion" in message and isinstance(message.get("data"), dict):
            message = message["data"]  # the subscription's CloudEvents format wraps the payload
        notification = message.get("notificationType")
        if not isinstance(notification, str):
            raise InvalidEvent(
                "schema", "notificationType: missing (not a commercetools subscription message)"
            )
        if notification != "Message":
            return ()  # change notifications and the subscription's own test message
        resource = expect_object(message.get("resource"), "resource")
        if text_field(resource, "typeId", "resource") != "product":
            return ()
        message_id = required_text(message, "id", "message")
        project = text_field(message, "projectKey", "message")
        tenant = project or self.context.tenant
        source = f"commercetools://{project or tenant}"
        left_out = message.get("payloadNotIncluded")
        if left_out is not None:
            left_out = expect_object(left_out, "payloadNotIncluded")
            kind = required_text(left_out, "payloadType", "payloadNotIncluded")
        else:
            kind = required_text(message, "type", "message")
        if kind == "ProductDeleted":
            product_id = required_text(resource, "id", "resource")
            return (ProductDeleted(message_id, tenant, product_id, source),)
        if kind not in _WITH_PROJECTION:
            return ()
        if left_out is None:
            projection = expect_object(message.get("productProjection"), "productProjection")
        else:
            fetched = self._fetch(message, resource, kind, left_out)
            if fetched is None:
                return ()  # the product is gone
            projection = _projection(fetched, kind)
        time = text_field(message, "createdAt", "message") or record_time(record)
        product_id = text_field(projection, "id", "productProjection") or required_text(
            resource, "id", "resource"
        )
        return tuple(
            product_event(
                id=message_id,
                updated=kind == "ProductPublished",
                source=source,
                time=time,
                tenant=tenant,
                product=product,
            )
            for product in self._products(projection, product_id)
        )

    def _fetch(
        self,
        message: Mapping[str, Any],
        resource: Mapping[str, Any],
        kind: str,
        left_out: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        why = left_out.get("reason")
        why = f" ({why})" if isinstance(why, str) and why else ""
        if self.context.fetch is None:
            raise InvalidEvent(
                "payload_not_included",
                f"the {kind} message came without its payload{why}; set formats.fetch to a "
                "hook that fetches the product projection",
            )
        reference = {
            "projectKey": message.get("projectKey"),
            "resource": resource,
            "resourceVersion": message.get("resourceVersion"),
            "type": kind,
        }
        try:
            found = self.context.fetch(self.name, reference)
        except Exception as exc:  # the user's hook: any failure is this record's dead letter
            raise InvalidEvent("fetch", f"fetch hook failed: {type(exc).__name__}: {exc}") from None
        if found is None:
            return None
        if not isinstance(found, Mapping):
            raise InvalidEvent(
                "fetch",
                f"fetch hook returned {type(found).__name__}; expected the product projection "
                "(a JSON object) or None",
            )
        return dict(found)

    def _products(self, projection: Mapping[str, Any], product_id: str) -> list[dict[str, Any]]:
        names = _localized(projection.get("name"), "productProjection.name")
        named = [locale for locale, title in names.items() if title.strip()]
        if not named:
            raise InvalidEvent("schema", "productProjection.name: no locale has a name")
        if len(named) > _MAX_LOCALES:
            raise InvalidEvent(
                "schema", f"productProjection.name: {len(named)} locales, more than {_MAX_LOCALES}"
            )
        descriptions = _localized(projection.get("description"), "productProjection.description")
        keywords = _localized(projection.get("metaKeywords"), "productProjection.metaKeywords")
        master = projection.get("masterVariant")
        master = {} if master is None else expect_object(master, "masterVariant")
        sku = text_field(master, "sku", "masterVariant")
        attributes = _attributes(master.get("attributes"))
        categories = projection.get("categories")
        if categories is not None and not isinstance(categories, list):
            raise InvalidEvent("schema", "productProjection.categories: expected a list")
        products = []
        for locale in named:
            product: dict[str, Any] = {
                "product_id": product_id,
                "sku": sku or None,
                "locale": locale_tag(locale),
                "title": names[locale],
                "description": text_or_html_to_text(descriptions.get(locale, "")),
                "keywords": split_tags(keywords.get(locale, "")),
                "category": _category_names(categories or [], locale),
                "attributes": {},
            }
            for name, value in attributes:
                text = _text(value, locale)
                if text is None or not text.strip():
                    continue
                if name == self.brand_attribute:
                    product["brand"] = text
                else:
                    product["attributes"][name] = text
            products.append(product)
        return products

    def encode_update(self, suggestion: Suggestion) -> bytes | None:
        # Product.locale is the LocalizedString key as commercetools wrote it (de-DE stays
        # de-DE). setName replaces the whole LocalizedString: the connector merges this locale
        # into the product's current name and adds "version" before it posts the update.
        locale = suggestion.input.locale
        actions: list[dict[str, Any]] = [
            {"action": "setName", "name": {locale: suggestion.title}, "staged": True}
        ]
        if suggestion.description:
            actions.append(
                {
                    "action": "setDescription",
                    "description": {locale: suggestion.description},
                    "staged": True,
                }
            )
        document = {"productId": suggestion.product_id, "locale": locale, "actions": actions}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _projection(document: dict[str, Any], kind: str) -> dict[str, Any]:
    """A fetched ProductProjection; a whole Product (masterData) gives its current or staged
    data, as the message would have carried it."""
    master = document.get("masterData")
    if not isinstance(master, dict):
        return document
    which = "current" if kind == "ProductPublished" else "staged"
    data = expect_object(master.get(which), f"masterData.{which}")
    return {**data, "id": document.get("id")}


def _localized(value: Any, what: str) -> dict[str, str]:
    """A LocalizedString; absent is empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent("schema", f"{what}: expected a LocalizedString object")
    for locale, text in value.items():
        if not isinstance(text, str):
            raise InvalidEvent("schema", f"{what}.{locale}: expected a string")
    return value


def _attributes(value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidEvent("schema", "masterVariant.attributes: expected a list")
    found = []
    for index, item in enumerate(value):
        what = f"masterVariant.attributes[{index}]"
        attribute = expect_object(item, what)
        found.append((required_text(attribute, "name", what), attribute.get("value")))
    return found


def _text(value: Any, locale: str) -> str | None:
    """An attribute value as text for the locale; None for money, references, nested
    attributes and values without this locale."""
    if isinstance(value, list):
        parts = [_scalar(item, locale) for item in value]
        texts = [p for p in parts if p]
        return ", ".join(texts) if texts else None
    return _scalar(value, locale)


def _scalar(value: Any, locale: str) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return None
    if "key" in value and "label" in value:  # enum (label text) or lenum (LocalizedString)
        value = value["label"]
        if isinstance(value, str):
            return value
        if not isinstance(value, dict):
            return None
    elif {"typeId", "centAmount", "currencyCode"} & value.keys():
        return None  # reference or money
    text = value.get(locale)
    return text if isinstance(text, str) else None


def _number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _category_names(categories: list[Any], locale: str) -> list[str]:
    """Names of expanded category references (obj); unexpanded ones name no category."""
    names = []
    for category in categories:
        obj = category.get("obj") if isinstance(category, dict) else None
        name = obj.get("name") if isinstance(obj, dict) else None
        text = name.get(locale) if isinstance(name, dict) else None
        if isinstance(text, str) and text.strip():
            names.append(text)
    return names[:_MAX_CATEGORIES]
