"""The CloudEvents format: structured and binary content mode (Kafka protocol binding),
product.created / updated / deleted types, and the copyflow.suggestion.created write-back."""

from __future__ import annotations

import base64
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
from copyflow.plugins.catalog.formats.cloudevents import CloudEventsFormat
from copyflow.schemas import ModelInfo, Product, ProductEvent, Suggestion
from tests.corpus import cases

ROOT = Path(__file__).resolve().parents[2]
STRUCTURED = "application/cloudevents+json; charset=UTF-8"
SOURCE = "//catalog.example/products"
DATA: dict[str, Any] = {"product_id": "P-1", "title": "Walnut Desk Organizer", "price": 30}


def test_example_stream_mixes_both_modes() -> None:
    records = [record for record, _ in cases("cloudevents")]
    assert sum(r.header("ce_specversion") is not None for r in records) >= 3
    assert sum(r.header("content-type") == STRUCTURED.encode() for r in records) >= 3


def test_price_only_update_gives_the_same_product() -> None:
    examples = cases("cloudevents")
    first, second = (CloudEventsFormat().decode(examples[i][0])[0] for i in (3, 4))
    assert isinstance(first, ProductEvent) and isinstance(second, ProductEvent)
    assert first.data == second.data
    assert first.data.content_hash() == second.data.content_hash()


def test_registered_by_name() -> None:
    assert isinstance(make_format("cloudevents"), CloudEventsFormat)
    assert CloudEventsFormat.dedupe_events is False


def test_options_are_refused() -> None:
    with pytest.raises(ValueError, match="cloudevents: unknown option"):
        CloudEventsFormat(FormatContext(options={"mode": "binary"}))


# -- building records --------------------------------------------------------------------


def _event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "e-1",
        "source": SOURCE,
        "type": "com.example.catalog.product.created",
        "time": "2025-06-01T10:00:00Z",
        "datacontenttype": "application/json",
        "data": DATA,
    }
    event.update(changes)
    return {k: v for k, v in event.items() if v is not None}


def _structured(event: dict[str, Any], content_type: str | None = STRUCTURED) -> CatalogRecord:
    headers = () if content_type is None else (("content-type", content_type.encode()),)
    return CatalogRecord(value=json.dumps(event).encode(), headers=headers, key=b"k-1")


def _binary(
    value: bytes | None = None,
    key: bytes | None = None,
    headers: dict[str, str] | None = None,
    **more: str,
) -> CatalogRecord:
    pairs = {
        "ce_specversion": "1.0",
        "ce_id": "e-2",
        "ce_source": SOURCE,
        "ce_type": "com.example.catalog.product.updated",
        "content-type": "application/json",
    }
    pairs.update(headers or {})
    pairs.update(more)
    return CatalogRecord(
        value=json.dumps(DATA).encode() if value is None else value,
        key=key,
        headers=tuple((k, v.encode()) for k, v in pairs.items() if v != "-"),
        timestamp_ms=1748772000000,  # 2025-06-01T10:00:00Z
    )


def _decode(record: CatalogRecord, tenant: str = "default") -> Sequence[Decoded]:
    return CloudEventsFormat(FormatContext(tenant=tenant)).decode(record)


def _one(record: CatalogRecord, tenant: str = "default") -> ProductEvent:
    items = _decode(record, tenant)
    assert len(items) == 1 and isinstance(items[0], ProductEvent)
    return items[0]


def _kind(record: CatalogRecord) -> str:
    with pytest.raises(InvalidEvent) as caught:
        _decode(record)
    return caught.value.kind


# -- structured content mode -------------------------------------------------------------


def test_structured_mode_by_content_type() -> None:
    event = _one(_structured(_event(tenant="oakline", subject="P-1")), tenant="other")
    assert event.model_dump(mode="json") == {
        "id": "e-1",
        "type": "product.created",
        "source": SOURCE,
        "time": "2025-06-01T10:00:00Z",
        "tenant": "oakline",
        "schema_version": "1",
        "data": {
            "product_id": "P-1",
            "sku": None,
            "locale": "en-US",
            "title": "Walnut Desk Organizer",
            "description": "",
            "brand": None,
            "category": [],
            "attributes": {},
            "keywords": [],
            "channels": ["default"],
        },
    }


def test_structured_mode_by_specversion_member_alone() -> None:
    with_header = _one(_structured(_event()))
    assert _one(_structured(_event(), content_type=None)) == with_header
    # Another content-type header (no ce_ headers) still reads the JSON event.
    assert _one(_structured(_event(), content_type="application/json")) == with_header


def test_structured_mode_ignores_ce_headers() -> None:
    record = _structured(_event())
    record = replace(record, headers=(*record.headers, ("ce_id", b"from-header")))
    assert _one(record).id == "e-1"


def test_data_base64_and_data_as_json_text() -> None:
    plain = _one(_structured(_event())).data
    encoded = base64.b64encode(json.dumps(DATA).encode()).decode()
    assert _one(_structured(_event(data=None, data_base64=encoded))).data == plain
    assert _one(_structured(_event(data=json.dumps(DATA)))).data == plain
    assert _one(_structured(_event(datacontenttype=None))).data == plain
    assert _one(_structured(_event(datacontenttype="application/vnd.acme+json"))).data == plain


@pytest.mark.parametrize(
    "changes",
    [
        {"data": None, "data_base64": "not base64!"},
        {"data": None, "data_base64": 12},
        {"datacontenttype": "application/xml", "data": "<product/>"},
        {"datacontenttype": "text/plain", "data": {"product_id": "P-1"}},
        {"data": None},
        {"data": [DATA]},
        {"data": {"title": "No id"}},
    ],
)
def test_unusable_data_is_schema(changes: dict[str, Any]) -> None:
    assert _kind(_structured(_event(**changes))) == "schema"


def test_data_text_that_is_not_json_is_decode() -> None:
    assert _kind(_structured(_event(data="{not json"))) == "decode"
    bad = base64.b64encode(b"\xff\xfe").decode()
    assert _kind(_structured(_event(data=None, data_base64=bad))) == "decode"


def test_subject_names_the_product_when_data_does_not() -> None:
    data = {"title": "Walnut Desk Organizer"}
    event = _one(_structured(_event(subject="P-9", data=data)))
    assert event.data.product_id == "P-9"
    # data wins over the subject
    assert _one(_structured(_event(subject="P-9"))).data.product_id == "P-1"


def test_locale_in_catalog_spelling_becomes_bcp47() -> None:
    data = dict(DATA, locale="de_DE")
    assert _one(_structured(_event(data=data))).data.locale == "de-DE"


# -- binary content mode -----------------------------------------------------------------


def test_binary_mode_reads_attributes_from_headers() -> None:
    record = _binary(
        ce_time="2025-06-02T08:30:00+02:00", ce_subject="P-1", ce_tenant="oakline", ce_x="y"
    )
    event = _one(record, tenant="other")
    assert (event.id, event.type, event.source, event.tenant) == (
        "e-2",
        "product.updated",
        SOURCE,
        "oakline",
    )
    assert event.time == datetime(2025, 6, 2, 6, 30, tzinfo=UTC)
    assert event.data.title == "Walnut Desk Organizer"


def test_binary_mode_header_names_are_case_insensitive() -> None:
    record = _binary(headers={"CE_TENANT": "upper"})
    assert _one(record).tenant == "upper"


def test_time_falls_back_to_the_record_timestamp() -> None:
    assert _one(_binary()).time == datetime(2025, 6, 1, 10, 0, tzinfo=UTC)


def test_tenant_falls_back_to_the_context() -> None:
    assert _one(_binary(), tenant="fallback").tenant == "fallback"
    assert _one(_binary(ce_tenant="  "), tenant="fallback").tenant == "fallback"


def test_binary_content_type() -> None:
    assert _one(_binary(headers={"content-type": "-"})).data.product_id == "P-1"  # JSON by default
    assert (
        _one(_binary(headers={"content-type": "application/json; charset=utf-8"})).data.sku is None
    )
    assert _kind(_binary(headers={"content-type": "application/avro"})) == "schema"
    assert _kind(_binary(value=b"")) == "schema"  # a product event without data
    assert _kind(_binary(value=b"\xff{")) == "decode"


# -- attributes and types ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        ("product.created", "product.created"),
        ("com.example.catalog.product.created", "product.created"),
        ("product.updated", "product.updated"),
        ("com.example.catalog.product.updated", "product.updated"),
    ],
)
def test_product_types(type_: str, expected: str) -> None:
    assert _one(_structured(_event(type=type_))).type == expected
    assert _one(_binary(ce_type=type_)).type == expected


@pytest.mark.parametrize(
    "type_", ["com.example.catalog.price.changed", "product.created.v2", "order.created"]
)
def test_other_types_give_nothing_even_with_unreadable_data(type_: str) -> None:
    assert _decode(_structured(_event(type=type_, data="<xml/>"))) == ()
    assert _decode(_binary(value=b"\x00\xff", ce_type=type_)) == ()


@pytest.mark.parametrize("name", ["id", "source", "type", "specversion"])
def test_missing_required_attribute_is_schema(name: str) -> None:
    event = _event()
    del event[name]
    assert _kind(_structured(event)) == "schema"
    assert _kind(_structured(_event(**{name: "  "}))) == "schema"
    if name != "specversion":  # without ce_specversion a record is no binary-mode event
        assert _kind(_binary(headers={f"ce_{name}": "-"})) == "schema"


@pytest.mark.parametrize("version", ["0.3", "1", "2.0", 1.0])
def test_other_specversions_are_schema(version: Any) -> None:
    with pytest.raises(InvalidEvent, match="specversion") as caught:
        _decode(_structured(_event(specversion=version)))
    assert caught.value.kind == "schema"
    if isinstance(version, str):
        assert _kind(_binary(ce_specversion=version)) == "schema"


@pytest.mark.parametrize(
    "changes",
    [
        {"id": {"x": 1}},
        {"tenant": True},
        {"time": "yesterday"},
        {"source": ["a"]},
        {"id": "x" * 300},
    ],
)
def test_attributes_of_wrong_type_are_schema(changes: dict[str, Any]) -> None:
    assert _kind(_structured(_event(**changes))) == "schema"


def test_not_a_cloud_event_is_schema() -> None:
    with pytest.raises(InvalidEvent, match="not a CloudEvent") as caught:
        _decode(CatalogRecord(value=json.dumps(DATA).encode()))
    assert caught.value.kind == "schema"


@pytest.mark.parametrize(
    "content_type", ["application/cloudevents-batch+json", "application/cloudevents+avro"]
)
def test_batch_and_other_event_formats_are_schema(content_type: str) -> None:
    assert _kind(_structured(_event(), content_type=content_type)) == "schema"


# -- deletions ---------------------------------------------------------------------------


DELETED = "com.example.catalog.product.deleted"


def test_deleted_takes_the_product_id_from_data() -> None:
    record = _structured(_event(type=DELETED, data={"product_id": "P-7"}, subject="P-8"))
    assert _decode(record, tenant="t") == (ProductDeleted("e-1", "t", "P-7", SOURCE),)


def test_deleted_takes_subject_then_key() -> None:
    by_subject = _structured(_event(type=DELETED, data=None, subject="P-8", tenant="north"))
    assert _decode(by_subject) == (ProductDeleted("e-1", "north", "P-8", SOURCE),)
    by_key = _binary(value=b"", key=b"P-9", ce_type=DELETED, ce_id="e-3")
    assert _decode(by_key) == (ProductDeleted("e-3", "default", "P-9", SOURCE),)
    empty_data = _binary(value=b"{}", key=b"P-9", ce_type=DELETED)
    assert _decode(empty_data)[0] == ProductDeleted("e-2", "default", "P-9", SOURCE)


def test_deleted_without_any_product_id_is_schema() -> None:
    record = _binary(value=b"", key=None, ce_type=DELETED)
    assert _kind(record) == "schema"
    assert _kind(replace(record, key=b"\xff")) == "schema"


# -- limits ------------------------------------------------------------------------------


def test_product_limits_are_schema_dead_letters() -> None:
    many = dict(DATA, attributes={f"a{i}": "v" for i in range(201)})
    with pytest.raises(InvalidEvent, match="attributes") as caught:
        _decode(_structured(_event(data=many)))
    assert caught.value.kind == "schema"
    assert _kind(_structured(_event(data=dict(DATA, description="x" * 20_001)))) == "schema"
    assert _kind(_structured(_event(data=dict(DATA, title=7)))) == "schema"


# -- write-back --------------------------------------------------------------------------


def _suggestion() -> Suggestion:
    return Suggestion(
        suggestion_id=uuid.UUID(int=5),
        product_id="P-1",
        tenant="oakline",
        source_event_id="e-1",
        channel="default",
        title="Walnut Desk Organizer with 5 Compartments",
        description="Keeps pens and cables in order.",
        model=ModelInfo(base="m", revision="r", prompt_version="v1"),
        checks=[],
        fallback_used=False,
        latency_ms=2.0,
        content_hash="h",
        input=Product(product_id="P-1", title="Walnut Desk Organizer"),
        created_at=datetime(2025, 6, 1, 10, 0, 5, tzinfo=UTC),
    )


def test_encode_update_is_a_structured_cloud_event() -> None:
    suggestion = _suggestion()
    document = CloudEventsFormat().encode_update(suggestion)
    assert document is not None
    assert json.loads(document) == {
        "specversion": "1.0",
        "id": "00000000-0000-0000-0000-000000000005",
        "source": "copyflow",
        "type": "copyflow.suggestion.created",
        "subject": "P-1",
        "tenant": "oakline",
        "datacontenttype": "application/json",
        "time": "2025-06-01T10:00:05Z",
        "data": suggestion.model_dump(mode="json"),
    }
    assert json.loads(document)["data"]["title"] == "Walnut Desk Organizer with 5 Compartments"
    # The document is itself a structured-mode event this format reads (and ignores).
    assert CloudEventsFormat().decode(CatalogRecord(value=document)) == ()


# -- bad input ---------------------------------------------------------------------------


def test_bad_input_gives_invalid_event_only() -> None:
    examples = [record for record, _ in cases("cloudevents")][:3]
    values: list[bytes | None] = [
        b"\x00\x9f\x92\x96garbage",
        b"",
        None,
        b"[]",
        b'"text"',
        b"null",
        b"{" * 10_000,
        json.dumps(_event(data={"product_id": 5, "title": None})).encode(),
        json.dumps(_event(data={"product_id": "P", "title": "T", "attributes": [1]})).encode(),
        json.dumps(_event(data={"product_id": "P", "title": "T", "category": "x"})).encode(),
    ]
    tried = 0
    for example in examples:
        value = example.value or b""
        for bad in [*values, value[: len(value) // 2], value[:-1], value + b"}"]:
            tried += 1
            with pytest.raises(InvalidEvent):
                CloudEventsFormat().decode(replace(example, value=bad))
    assert tried == 39
