"""CloudEvents 1.0 over Kafka (the Kafka protocol binding), in both content modes:

- structured: the record value is the event in the JSON event format (content-type
  application/cloudevents+json, or any JSON object with "specversion"), data in "data" or
  "data_base64";
- binary: the attributes are ce_* headers, content-type is datacontenttype and the value is
  the data.

The data is copyflow's Product JSON. Types ending in product.created / product.updated /
product.deleted are read; every other type is ignored. Write-back is a structured-mode
copyflow.suggestion.created event carrying the Suggestion."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
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
    parse_json,
    product_event,
    record_json,
    record_time,
    text_field,
)
from copyflow.schemas import Suggestion

_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "subject", "tenant")
_REQUIRED = ("id", "source", "type")
_MAX_ID = 256  # ProductEvent's limit on ids; a deletion is held to the same


def _is_json(media: str | None) -> bool:
    """Whether a content type is JSON: application/json, text/json or any +json suffix."""
    if media is None:
        return True  # the JSON format's default datacontenttype
    kind = media.split(";", 1)[0].strip().lower()
    return kind in ("application/json", "text/json") or kind.endswith("+json")


class CloudEventsFormat(CatalogFormat):
    name = "cloudevents"

    def __init__(self, context: FormatContext | None = None) -> None:
        super().__init__(context)
        check_options(self.name, self.context.options, ())

    def decode(self, record: CatalogRecord) -> Sequence[Decoded]:
        content_type = header_text(record, "content-type")
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media.startswith("application/cloudevents-batch"):
            raise InvalidEvent("schema", "batched content mode is not part of the Kafka binding")
        if media.startswith("application/cloudevents"):
            if not _is_json(media):
                raise InvalidEvent("schema", f"event format {media}: copyflow reads JSON only")
            attributes, data = _structured(expect_object(record_json(record), "value"))
        elif record.header("ce_specversion") is not None:
            attributes, data = _binary(record, content_type)
        else:
            document = record_json(record)
            if not isinstance(document, dict) or "specversion" not in document:
                raise InvalidEvent(
                    "schema",
                    "not a CloudEvent: no ce_specversion header, no application/cloudevents "
                    "content-type and no specversion in the value",
                )
            attributes, data = _structured(document)
        return self._decode(record, attributes, data)

    def _decode(
        self, record: CatalogRecord, attributes: dict[str, str | None], data: Callable[[], Any]
    ) -> Sequence[Decoded]:
        version = attributes["specversion"]
        if version is None:
            raise InvalidEvent("schema", "CloudEvent attribute specversion: missing")
        if version != "1.0":
            raise InvalidEvent("schema", f"specversion {version!r}: copyflow reads CloudEvents 1.0")
        for name in _REQUIRED:
            value = attributes[name]
            if value is None or not value.strip():
                raise InvalidEvent("schema", f"CloudEvent attribute {name}: missing")
        event_id, source, kind = (str(attributes[n]) for n in _REQUIRED)
        tenant = (attributes["tenant"] or "").strip() or self.context.tenant
        subject = (attributes["subject"] or "").strip() or None
        if kind.endswith("product.deleted"):
            return (_deleted(record, event_id, tenant, source, subject, data()),)
        if not kind.endswith(("product.created", "product.updated")):
            return ()  # another message type of the catalog
        document = data()
        if document is None:
            raise InvalidEvent("schema", f"{kind} event without data")
        product = dict(expect_object(document, "data"))
        if product.get("product_id") is None and subject is not None:
            product["product_id"] = subject
        if isinstance(product.get("locale"), str):
            product["locale"] = locale_tag(product["locale"])
        return (
            product_event(
                id=event_id,
                updated=kind.endswith("product.updated"),
                source=source,
                time=attributes["time"] or record_time(record),
                tenant=tenant,
                product=product,
            ),
        )

    def encode_update(self, suggestion: Suggestion) -> bytes | None:
        data = suggestion.model_dump(mode="json")
        event = {
            "specversion": "1.0",
            "id": str(suggestion.suggestion_id),
            "source": "copyflow",
            "type": "copyflow.suggestion.created",
            "subject": suggestion.product_id,
            "tenant": suggestion.tenant,
            "datacontenttype": "application/json",
            "time": data["created_at"],
            "data": data,
        }
        return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _structured(event: dict[str, Any]) -> tuple[dict[str, str | None], Callable[[], Any]]:
    attributes: dict[str, str | None] = {}
    for name in (*_ATTRIBUTES, "datacontenttype"):
        value = event.get(name)
        # Context attributes are JSON strings in the JSON format; the tenant extension may
        # also be a number.
        if name == "tenant" or value is None or isinstance(value, str):
            attributes[name] = text_field(event, name, "event")
        else:
            raise InvalidEvent("schema", f"event.{name}: expected a string")
    content_type = attributes.pop("datacontenttype")

    def data() -> Any:
        encoded = event.get("data_base64")
        if encoded is not None:
            if not isinstance(encoded, str):
                raise InvalidEvent("schema", "event.data_base64: expected a base64 string")
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidEvent("schema", "event.data_base64: not base64") from None
            return _json_data(raw, content_type, "data_base64")
        value = event.get("data")
        if isinstance(value, str):  # JSON data sent as its text, or text data
            return _json_data(value, content_type, "data")
        if value is not None and not _is_json(content_type):
            raise _unsupported(content_type)
        return value

    return attributes, data


def _binary(
    record: CatalogRecord, content_type: str | None
) -> tuple[dict[str, str | None], Callable[[], Any]]:
    attributes = {name: header_text(record, f"ce_{name}") for name in _ATTRIBUTES}

    def data() -> Any:
        if not record.value:
            return None
        return _json_data(record.value, content_type, "value")

    return attributes, data


def _json_data(raw: bytes | str, content_type: str | None, what: str) -> Any:
    if not _is_json(content_type):
        raise _unsupported(content_type)
    return parse_json(raw, what)


def _unsupported(content_type: str | None) -> InvalidEvent:
    return InvalidEvent("schema", f"datacontenttype {content_type}: copyflow reads JSON data")


def _deleted(
    record: CatalogRecord,
    event_id: str,
    tenant: str,
    source: str,
    subject: str | None,
    data: Any,
) -> ProductDeleted:
    product_id = None
    if isinstance(data, dict):
        product_id = text_field(data, "product_id", "data")
    if not (product_id and product_id.strip()):
        product_id = subject or _key(record)
    if product_id is None:
        raise InvalidEvent(
            "schema", "product.deleted: no product id (data.product_id, subject or record key)"
        )
    for what, value in (("id", event_id), ("tenant", tenant), ("product id", product_id)):
        if len(value) > _MAX_ID:
            raise InvalidEvent("schema", f"product.deleted: {what} longer than {_MAX_ID}")
    return ProductDeleted(event_id, tenant, product_id.strip(), source)


def _key(record: CatalogRecord) -> str | None:
    try:
        key = (record.key or b"").decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return key or None
