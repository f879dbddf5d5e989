"""Akeneo PIM product events: the Events API webhook body ({"events": [...]}, or one event
object), whose product.created / product.updated events carry the product's values, and
thin events that only name the product (the Event Platform's CloudEvents, structured or
binary mode, or an event whose resource has no values), fetched through the fetch hook.

Each locale of the name attribute gives one ProductEvent. Write-back is the REST API's PATCH
body for the product's name and description values."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
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

# option -> default; None: not set (TOML has no null: leave the option out)
_OPTIONS: dict[str, str | None] = {
    "scope": "ecommerce",
    "locale": "en_US",
    "name_attribute": "name",
    "description_attribute": "description",
    "brand_attribute": "brand",
    "keywords_attribute": None,
    "sku_attribute": "sku",
    "name_scope": None,
}
_CREATED, _UPDATED, _REMOVED = "product.created", "product.updated", "product.removed"
_CE_PRODUCT = (".product.created", ".product.updated", ".product.updated.delta")
_MAX_LOCALES = 100
_MAX_CATEGORIES = 16  # Product.category's limit; more categories only lose the tail
# A value as the webhook and the REST API write it: (locale, scope, data).
Value = tuple[str | None, str | None, Any]


class AkeneoFormat(CatalogFormat):
    name = "akeneo"
    # The Event Platform delivers at least once; a redelivered event keeps its id.
    dedupe_events = True

    def __init__(self, context: FormatContext | None = None) -> None:
        super().__init__(context)
        options = self.context.options
        check_options(self.name, options, _OPTIONS)
        chosen: dict[str, str | None] = {}
        for option, default in _OPTIONS.items():
            value = options.get(option, default)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"akeneo option {option!r}: expected a non-empty string")
            chosen[option] = value
        self.scope = chosen["scope"]
        self.locale = chosen["locale"] or "en_US"
        self.name_attribute = chosen["name_attribute"] or "name"
        self.description_attribute = chosen["description_attribute"] or "description"
        self.brand_attribute = chosen["brand_attribute"]
        self.keywords_attribute = chosen["keywords_attribute"]
        self.sku_attribute = chosen["sku_attribute"]
        self.name_scope = chosen["name_scope"]
        self._mapped = {
            code
            for code in (
                self.name_attribute,
                self.description_attribute,
                self.brand_attribute,
                self.keywords_attribute,
                self.sku_attribute,
            )
            if code
        }

    def decode(self, record: CatalogRecord) -> Sequence[Decoded]:
        document = expect_object(record_json(record), "value")
        if "events" in document:
            events = document["events"]
            if not isinstance(events, list):
                raise InvalidEvent("schema", "events: expected a list")
            found: list[Decoded] = []
            for index, event in enumerate(events):
                what = f"events[{index}]"
                found += self._event(record, expect_object(event, what), index, what)
            return tuple(found)
        binary_type = header_text(record, "ce_type")
        if "specversion" in document or binary_type is not None:
            return tuple(self._cloudevent(record, document, binary_type))
        if "action" in document:
            return tuple(self._event(record, document, 0, "event"))
        raise InvalidEvent(
            "schema", "not an Akeneo event: expected events, an event (action) or a CloudEvent"
        )

    def _event(
        self, record: CatalogRecord, event: Mapping[str, Any], index: int, what: str
    ) -> list[Decoded]:
        """One Events API event."""
        action = event.get("action")
        if not isinstance(action, str):
            raise InvalidEvent("schema", f"{what}.action: expected the event's action")
        if action not in (_CREATED, _UPDATED, _REMOVED):
            return []  # product models, other resources
        event_id = text_field(event, "event_id", what) or _derived_id(record, index)
        source = text_field(event, "pim_source", what) or "akeneo"
        time = text_field(event, "event_datetime", what) or record_time(record)
        data = expect_object(event.get("data"), f"{what}.data")
        resource = expect_object(data.get("resource"), f"{what}.data.resource")
        if action == _REMOVED:
            return [self._deleted(resource, event_id, source, f"{what}.data.resource")]
        if "values" not in resource:
            fetched = self._fetch(resource, action)
            if fetched is None:
                return []
            resource, what = fetched, "fetched product"
        return self._products(resource, event_id, action == _UPDATED, source, time, what)

    def _cloudevent(
        self, record: CatalogRecord, document: dict[str, Any], binary_type: str | None
    ) -> list[Decoded]:
        """An Event Platform event: structured (the envelope in the value) or binary mode
        (ce_* headers, the data in the value)."""
        if "specversion" in document:
            kind = required_text(document, "type", "event")
            event_id = text_field(document, "id", "event")
            source = text_field(document, "source", "event")
            time: str | datetime | None = text_field(document, "time", "event")
            data = expect_object(document.get("data"), "data")
        else:
            kind = binary_type or ""
            event_id, source = header_text(record, "ce_id"), header_text(record, "ce_source")
            time, data = header_text(record, "ce_time"), document
        event_id = event_id or _derived_id(record, 0)
        source = source or "akeneo"
        time = time or record_time(record)
        deleted = kind.endswith((".product.deleted", ".product.removed"))
        if not deleted and not kind.endswith(_CE_PRODUCT):
            return []  # product models, other resources
        product = expect_object(data.get("product"), "data.product")
        if deleted:
            return [self._deleted(product, event_id, source, "data.product")]
        updated = not kind.endswith(".product.created")
        what = "data.product"
        if "values" not in product:
            fetched = self._fetch(product, kind)
            if fetched is None:
                return []
            product, what = fetched, "fetched product"
        return self._products(product, event_id, updated, source, time, what)

    def _fetch(self, resource: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
        reference = {
            "uuid": resource.get("uuid"),
            "identifier": resource.get("identifier"),
            "type": kind,
        }
        if self.context.fetch is None:
            raise InvalidEvent(
                "payload_not_included",
                f"the {kind} event names the product without its values; set formats.fetch "
                "to a hook that fetches the product from the REST API",
            )
        try:
            found = self.context.fetch(self.name, reference)
        except Exception as exc:  # the user's hook: any failure is this record's dead letter
            raise InvalidEvent("fetch", f"fetch hook failed: {type(exc).__name__}: {exc}") from None
        if found is None:
            return None
        if not isinstance(found, Mapping):
            raise InvalidEvent(
                "fetch",
                f"fetch hook returned {type(found).__name__}; expected the product (a JSON "
                "object) or None",
            )
        return dict(found)

    def _deleted(
        self, resource: Mapping[str, Any], event_id: str, source: str, what: str
    ) -> ProductDeleted:
        product_id = _product_id(resource, what)
        return ProductDeleted(event_id, self.context.tenant, product_id, source)

    def _products(
        self,
        resource: Mapping[str, Any],
        event_id: str,
        updated: bool,
        source: str,
        time: str | datetime,
        what: str,
    ) -> list[Decoded]:
        product_id = _product_id(resource, what)
        values = _values(resource.get("values"), f"{what}.values")
        categories = resource.get("categories")
        if categories is None:
            categories = []
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise InvalidEvent("schema", f"{what}.categories: expected a list of category codes")
        names = values.get(self.name_attribute, [])
        in_scope = [v for v in names if v[1] in (self.scope, None)]
        if not in_scope:
            raise InvalidEvent("schema", f"{what}.values.{self.name_attribute}: missing (title)")
        locales = list(dict.fromkeys(v[0] for v in in_scope if v[0] is not None))
        if not locales:
            locales = [self.locale]
        if len(locales) > _MAX_LOCALES:
            raise InvalidEvent(
                "schema", f"{what}.values.{self.name_attribute}: more than {_MAX_LOCALES} locales"
            )
        events: list[Decoded] = []
        for locale in locales:
            product = self._product(values, locale, what)
            product["product_id"] = product_id
            product["category"] = categories[:_MAX_CATEGORIES]
            events.append(
                product_event(
                    id=event_id,
                    updated=updated,
                    source=source,
                    time=time,
                    tenant=self.context.tenant,
                    product=product,
                )
            )
        return events

    def _product(self, values: dict[str, list[Value]], locale: str, what: str) -> dict[str, Any]:
        def pick(code: str | None) -> Any:
            return None if code is None else self._pick(values.get(code, []), locale)

        title = pick(self.name_attribute)
        if isinstance(title, bool) or not isinstance(title, str | int | float):
            raise InvalidEvent(
                "schema", f"{what}.values.{self.name_attribute} ({locale}): expected text"
            )
        description = pick(self.description_attribute)
        if description is not None and not isinstance(description, str):
            raise InvalidEvent(
                "schema", f"{what}.values.{self.description_attribute} ({locale}): expected text"
            )
        keywords = pick(self.keywords_attribute)
        if isinstance(keywords, list):
            keywords = split_tags([k for k in keywords if isinstance(k, str)])
        else:
            keywords = split_tags(keywords) if isinstance(keywords, str) else []
        attributes: dict[str, str] = {}
        for code, items in values.items():
            if code not in self._mapped:
                text = _text(self._pick(items, locale))
                if text is not None and text.strip():
                    attributes[code] = text
        return {
            "locale": locale_tag(locale),
            "title": str(title),
            "sku": _text(pick(self.sku_attribute)) or None,
            "description": text_or_html_to_text(description or ""),
            "brand": _text(pick(self.brand_attribute)) or None,
            "keywords": keywords,
            "attributes": attributes,
        }

    def _pick(self, items: list[Value], locale: str) -> Any:
        """The value for the locale and scope: this locale before every locale's (null), this
        scope before every scope's (null)."""
        best, rank = None, 4
        for value_locale, value_scope, data in items:
            if value_locale not in (locale, None) or value_scope not in (self.scope, None):
                continue
            here = (value_locale is None) * 2 + (value_scope is None)
            if here < rank:
                best, rank = data, here
        return best

    def encode_update(self, suggestion: Suggestion) -> bytes | None:
        locale = suggestion.input.locale.replace("-", "_")  # back to Akeneo's en_US form
        values: dict[str, list[dict[str, Any]]] = {
            self.name_attribute: [
                {"locale": locale, "scope": self.name_scope, "data": suggestion.title}
            ]
        }
        if suggestion.description:
            values[self.description_attribute] = [
                {"locale": locale, "scope": self.scope, "data": suggestion.description}
            ]
        document = {"identifier": suggestion.product_id, "values": values}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _derived_id(record: CatalogRecord, index: int) -> str:
    digest = hashlib.sha256(record.value or b"").hexdigest()[:24]
    return f"akeneo-{digest}-{index}"


def _product_id(resource: Mapping[str, Any], what: str) -> str:
    product_id = text_field(resource, "identifier", what) or text_field(resource, "uuid", what)
    if product_id is None or not product_id.strip():
        raise InvalidEvent("schema", f"{what}: missing identifier (and uuid)")
    return product_id


def _values(document: Any, what: str) -> dict[str, list[Value]]:
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InvalidEvent("schema", f"{what}: expected an object of attribute codes")
    values: dict[str, list[Value]] = {}
    for code, items in document.items():
        if not isinstance(items, list):
            raise InvalidEvent("schema", f"{what}.{code}: expected a list of values")
        found: list[Value] = []
        for item in items:
            if not isinstance(item, dict):
                raise InvalidEvent("schema", f"{what}.{code}[]: expected an object")
            locale, scope = item.get("locale"), item.get("scope")
            if not (isinstance(locale, str | None) and isinstance(scope, str | None)):
                raise InvalidEvent("schema", f"{what}.{code}[]: locale and scope must be text")
            found.append((locale, scope, item.get("data")))
        values[code] = found
    return values


def _text(data: Any) -> str | None:
    """A value's data as text: text, number, yes/no, a list of texts, a metric; None for
    price collections and other shapes."""
    if isinstance(data, list):
        if not data or not all(_scalar(item) is not None for item in data):
            return None
        return ", ".join(str(_scalar(item)) for item in data)
    if isinstance(data, dict):
        amount, unit = _scalar(data.get("amount")), data.get("unit")
        if amount is not None and isinstance(unit, str) and "currency" not in data:
            return f"{amount} {unit}"
        return None
    return _scalar(data)


def _scalar(data: Any) -> str | None:
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, float) and data.is_integer() and abs(data) < 1e15:
        return str(int(data))
    if isinstance(data, str | int | float):
        return str(data)
    return None
