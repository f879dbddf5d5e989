"""The Debezium format: change-event envelopes (with and without the JSON converter's schema
wrapper), tombstones, ExtractNewRecordState rows and TOAST placeholders."""

from __future__ import annotations

import base64
import contextlib
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from copyflow.plugins.catalog.base import (
    CatalogRecord,
    Decoded,
    FormatContext,
    InvalidEvent,
    PartialEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.formats.debezium import DebeziumFormat
from copyflow.schemas import ProductEvent
from tests.corpus import cases

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ["debezium", "debezium-flattened"]
T0 = 1733400000000  # 2024-12-05T12:00:00Z


@pytest.mark.parametrize("name", STREAMS)
def test_price_only_update_gives_the_same_product(name: str) -> None:
    examples = cases(name)
    at = 3 if name == "debezium" else 2
    copy_change, price_change = examples[at], examples[at + 1]
    first = DebeziumFormat().decode(copy_change[0])[0]
    second = DebeziumFormat().decode(price_change[0])[0]
    assert isinstance(first, ProductEvent) and isinstance(second, ProductEvent)
    assert first.data == second.data
    assert first.data.content_hash() == second.data.content_hash()


def test_name_and_keeps_content() -> None:
    # The registry finds built-ins by name; the worker keeps content to fill in TOAST columns.
    assert DebeziumFormat.name == "debezium"
    assert DebeziumFormat.keeps_content is True


# -- building records --------------------------------------------------------------------


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": 7,
        "sku": "LM-7",
        "title": "Folding Camp Lantern",
        "description": "Collapsible LED lantern.",
        "price": "19.90",
        "stock": 4,
    }
    row.update(changes)
    return row


def _source(**changes: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "version": "2.7.3.Final",
        "connector": "mysql",
        "name": "shopdb",
        "ts_ms": T0,
        "snapshot": "false",
        "db": "catalog",
        "table": "products",
        "server_id": 223344,
        "file": "mysql-bin.000003",
        "pos": 154,
        "row": 0,
    }
    source.update(changes)
    return source


def _change(op: str, after: Any = None, before: Any = None, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "before": before,
        "after": after,
        "source": _source(),
        "op": op,
        "ts_ms": T0 + 500,
    }
    payload.update(extra)
    return payload


def _record(value: Any, key: Any = None, timestamp_ms: int | None = None) -> CatalogRecord:
    raw = value if isinstance(value, bytes) or value is None else json.dumps(value).encode()
    encoded_key = key if isinstance(key, bytes) or key is None else json.dumps(key).encode()
    return CatalogRecord(value=raw, key=encoded_key, timestamp_ms=timestamp_ms)


def _decode(value: Any, key: Any = None, **options: Any) -> Sequence[Decoded]:
    context = FormatContext(tenant="acme", options=options)
    return DebeziumFormat(context).decode(_record(value, key))


def _one_event(value: Any, **options: Any) -> ProductEvent:
    items = _decode(value, **options)
    assert len(items) == 1 and isinstance(items[0], ProductEvent)
    return items[0]


def _kind(value: Any, key: Any = None, **options: Any) -> str:
    with pytest.raises(InvalidEvent) as caught:
        _decode(value, key, **options)
    return caught.value.kind


# -- envelopes ---------------------------------------------------------------------------


def test_mysql_create_without_schema() -> None:
    event = _one_event(_change("c", _row()))
    assert event.type == "product.created"
    assert event.source == "debezium://shopdb/catalog.products"
    assert event.time == datetime(2024, 12, 5, 12, 0, tzinfo=UTC)
    assert event.tenant == "acme"
    assert event.id.startswith("debezium-") and len(event.id) == len("debezium-") + 24
    assert event.data.model_dump() == {
        "product_id": "7",
        "sku": "LM-7",
        "locale": "en-US",
        "title": "Folding Camp Lantern",
        "description": "Collapsible LED lantern.",
        "brand": None,
        "category": [],
        "attributes": {},
        "keywords": [],
        "channels": ["default"],
    }


def test_schema_wrapper_and_snapshot_read() -> None:
    plain = _change("r", _row())
    wrapped = {
        "schema": {"type": "struct", "name": "shopdb.catalog.products.Envelope"},
        "payload": plain,
    }
    event = _one_event(wrapped)
    assert event.type == "product.created"
    assert event.data == _one_event(plain).data
    assert event.id != _one_event(plain).id  # the id hashes the record value as sent


def test_update_is_updated_and_id_is_deterministic() -> None:
    value = _change("u", _row(title="Folding Camp Lantern XL"), before=_row())
    first, second = _one_event(value), _one_event(value)
    assert first.type == "product.updated"
    assert first.data.title == "Folding Camp Lantern XL"
    assert first.id == second.id


def test_time_falls_back_to_payload_then_record_timestamp() -> None:
    value = _change("c", _row(), source=_source(ts_ms=None))
    assert _one_event(value).time == datetime(2024, 12, 5, 12, 0, 0, 500000, tzinfo=UTC)
    bare = {"before": None, "after": _row(), "op": "c"}
    record = _record(bare, timestamp_ms=T0 + 60_000)
    (event,) = DebeziumFormat().decode(record)
    assert isinstance(event, ProductEvent)
    assert event.time == datetime(2024, 12, 5, 12, 1, tzinfo=UTC)
    assert event.source == "debezium://unknown"


@pytest.mark.parametrize("op", ["t", "m", "x"])
def test_truncate_and_other_ops_give_nothing(op: str) -> None:
    assert _decode(_change(op)) == ()


def test_delete_takes_id_from_before_else_key() -> None:
    (deleted,) = _decode(_change("d", before=_row(tenant="north")))
    assert isinstance(deleted, ProductDeleted)
    assert (deleted.tenant, deleted.product_id) == ("north", "7")
    assert deleted.source == "debezium://shopdb/catalog.products"
    (by_key,) = _decode(_change("d", before=None), key={"id": 8})
    assert isinstance(by_key, ProductDeleted)
    assert (by_key.tenant, by_key.product_id) == ("acme", "8")
    assert _kind(_change("d", before=None)) == "schema"


def test_table_option_filters_change_events() -> None:
    value = _change("c", _row(), source=_source(table="orders"))
    assert _decode(value, table="products") == ()
    assert len(_decode(_change("c", _row()), table="products")) == 1
    assert len(_decode(_change("c", _row()), table="catalog.products")) == 1
    assert (
        _decode(_change("d", before=_row(), source=_source(table="orders")), table="products") == ()
    )


def test_other_debezium_messages_give_nothing() -> None:
    assert _decode({"ts_ms": T0}) == ()  # heartbeat
    assert _decode({"status": "BEGIN", "id": "571:53195829", "event_count": None}) == ()
    assert (
        _decode(
            {"source": {}, "databaseName": "catalog", "ddl": "ALTER TABLE x", "tableChanges": []}
        )
        == ()
    )


# -- tombstones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        {"id": 7},
        {"schema": {"type": "struct", "name": "shopdb.catalog.products.Key"}, "payload": {"id": 7}},
        7,
        "7",
    ],
)
def test_tombstone_deletes_by_key(key: Any) -> None:
    (deleted,) = _decode(None, key=key)
    assert isinstance(deleted, ProductDeleted)
    assert (deleted.tenant, deleted.product_id, deleted.source) == (
        "acme",
        "7",
        "debezium://unknown",
    )
    assert deleted.id.startswith("debezium-")


def test_tombstone_key_with_tenant_column() -> None:
    (deleted,) = _decode(
        None, key={"shop": "north", "sku_id": 9}, columns={"tenant": "shop", "product_id": "sku_id"}
    )
    assert isinstance(deleted, ProductDeleted)
    assert (deleted.tenant, deleted.product_id) == ("north", "9")


@pytest.mark.parametrize(
    "key",
    [
        None,
        b"Struct{id=7}",
        b"\xff\xfe",
        {"other": 1},
        {"id": None},
        {"id": ""},
        [7],
        {"id": {"x": 1}},
    ],
)
def test_tombstone_without_usable_key_is_schema(key: Any) -> None:
    assert _kind(None, key=key) == "schema"


def test_schema_wrapper_around_null_is_a_tombstone() -> None:
    (deleted,) = _decode({"schema": None, "payload": None}, key={"id": 3})
    assert isinstance(deleted, ProductDeleted) and deleted.product_id == "3"


# -- flattened rows (ExtractNewRecordState) --------------------------------------------


def test_flattened_row_with_added_fields() -> None:
    row = _row(
        __op="c", __table="products", __db="catalog", __source_ts_ms=T0 + 1000, __deleted="false"
    )
    event = _one_event(row)
    assert event.type == "product.created"
    assert event.source == "debezium://unknown/catalog.products"
    assert event.time == datetime(2024, 12, 5, 12, 0, 1, tzinfo=UTC)
    assert event.data.title == "Folding Camp Lantern"
    assert _one_event(_row(__op="u")).type == "product.updated"
    assert _one_event(_row()).type == "product.updated"  # no __op: the row's current state
    assert _decode(_row(__op="c", __table="orders"), table="products") == ()


@pytest.mark.parametrize("flag", ["true", True])
def test_flattened_rewrite_delete(flag: Any) -> None:
    (deleted,) = _decode(_row(__op="d", __deleted=flag))
    assert isinstance(deleted, ProductDeleted)
    assert (deleted.tenant, deleted.product_id) == ("acme", "7")


def test_flattened_row_with_schema_wrapper() -> None:
    wrapped = {"schema": {"type": "struct"}, "payload": _row(__op="r")}
    assert _one_event(wrapped).data == _one_event(_row()).data


# -- columns -----------------------------------------------------------------------------


def test_column_values_in_their_shapes() -> None:
    row = _row(
        id=42.0,
        category='["Outdoor", "Lighting"]',
        keywords="lantern, camping, , lantern",
        attributes='{"lumens": 300, "waterproof": true, "modes": ["low", "high"], "color": null}',
        channels="web, retail",
        locale="fr_CA",
        tenant="north",
        brand=123,
    )
    event = _one_event(_change("c", row))
    assert event.tenant == "north"
    data = event.data
    assert data.product_id == "42.0"
    assert data.category == ["Outdoor", "Lighting"]
    assert data.keywords == ["lantern", "camping"]
    assert data.attributes == {"lumens": "300", "waterproof": "true", "modes": "low, high"}
    assert data.channels == ["web", "retail"]
    assert data.locale == "fr-CA"
    assert data.brand == "123"


def test_list_columns_as_arrays_and_text() -> None:
    row = _row(
        category="Outdoor > Lighting > Lanterns",
        keywords=["a", "b"],
        channels=["web"],
        attributes={"k": "v"},
    )
    data = _one_event(_change("c", row)).data
    assert data.category == ["Outdoor", "Lighting", "Lanterns"]
    assert (data.keywords, data.channels, data.attributes) == (["a", "b"], ["web"], {"k": "v"})
    # Text that starts like JSON but is no list is split like any other text.
    assert _one_event(_change("c", _row(category="[Sale] > Lamps"))).data.category == [
        "[Sale]",
        "Lamps",
    ]


def test_columns_option_maps_fields() -> None:
    row = {"product_no": "P-1", "name": "Desk Lamp", "long_text": "Brass desk lamp.", "lang": "de"}
    columns = {
        "product_id": "product_no",
        "title": "name",
        "description": "long_text",
        "locale": "lang",
    }
    data = _one_event(_change("c", row), columns=columns).data
    assert (data.product_id, data.title, data.description, data.locale) == (
        "P-1",
        "Desk Lamp",
        "Brass desk lamp.",
        "de",
    )


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"columns": {"price": "price"}}, "price"),
        ({"columns": {"title": 3}}, "title"),
        ({"columns": {"title": ""}}, "title"),
        ({"columns": ["id"]}, "columns"),
        ({"table": 5}, "table"),
        ({"unavailable_value": ""}, "unavailable_value"),
        ({"colums": {}}, "colums"),
    ],
)
def test_invalid_options_name_the_key(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        DebeziumFormat(FormatContext(options=options))


# -- TOAST placeholders ------------------------------------------------------------------


def _partial(value: Any, **options: Any) -> PartialEvent:
    items = _decode(value, **options)
    assert len(items) == 1 and isinstance(items[0], PartialEvent)
    return items[0]


def test_unavailable_columns_become_a_partial_event() -> None:
    row = _row(
        title="__debezium_unavailable_value",
        description="__debezium_unavailable_value",
        attributes="X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==",  # bytea, binary.handling.mode=base64
        keywords=["__debezium_unavailable_value"],  # a text[] column
        sku="__debezium_unavailable_value",
    )
    partial = _partial(_change("u", row))
    assert partial.unavailable == frozenset(
        {"title", "description", "attributes", "keywords", "sku"}
    )
    data = partial.event.data
    assert (data.title, data.description, data.attributes, data.keywords, data.sku) == (
        "-",
        "",
        {},
        [],
        None,
    )
    assert partial.event.type == "product.updated"


def test_unavailable_value_option() -> None:
    row = _row(description="<toasted>")
    assert _partial(_change("u", row), unavailable_value="<toasted>").unavailable == {"description"}
    # The default placeholder is then ordinary text.
    event = _one_event(
        _change("u", _row(description="__debezium_unavailable_value")),
        unavailable_value="<toasted>",
    )
    assert event.data.description == "__debezium_unavailable_value"


@pytest.mark.parametrize("column", ["id", "locale", "tenant"])
def test_unavailable_identity_is_schema(column: str) -> None:
    assert _kind(_change("u", _row(**{column: "__debezium_unavailable_value"}))) == "schema"


def test_unmapped_unavailable_columns_are_ignored() -> None:
    assert (
        _one_event(_change("u", _row(notes="__debezium_unavailable_value"))).data.title
        == "Folding Camp Lantern"
    )


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        _change("c", _row(title={"en": "x"})),
        _change("c", _row(title=None)),
        _change("c", _row(id=None)),
        _change("c", _row(id=True)),
        _change("c", _row(title="   ")),
        _change("c", _row(title="x" * 1001)),
        _change("c", _row(attributes={f"a{i}": "v" for i in range(201)})),
        _change("c", _row(attributes="[1, 2]")),
        _change("c", _row(attributes={"a": {"nested": 1}})),
        _change("c", _row(category=5)),
        _change("c", _row(keywords=[{"x": 1}])),
        _change("c", _row(locale="English")),
        _change("c", _row(tenant=["a"])),
        _change("c", None),
        _change("c", [1]),
        _change(5, _row()),  # type: ignore[arg-type]
        _change("c", _row(), source="mysql"),
        _change("c", _row(), source=_source(ts_ms="yesterday")),
        _change("c", _row(), source=_source(ts_ms=10**30)),
        _row(__op=["c"]),
        [1, 2],
        "text",
        42,
        b"null",  # a tombstone has no value at all, not JSON null
    ],
)
def test_invalid_documents_are_schema(value: Any) -> None:
    assert _kind(value) == "schema"


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", b"{", b"", b"[" * 200 + b"]" * 200, b"1" * 5000])
def test_unreadable_values_are_decode(raw: bytes) -> None:
    assert _kind(raw) == "decode"


def test_garbage_and_truncated_examples_raise_only_invalid_event() -> None:
    rng = random.Random(7)
    fmt = DebeziumFormat()
    samples: list[bytes] = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) for _ in range(200)
    ]
    for name in STREAMS:
        for record, _ in cases(name):
            if record.value:
                samples += [record.value[:cut] for cut in range(0, len(record.value), 37)]
    for raw in samples:
        try:
            items = fmt.decode(CatalogRecord(value=raw, key=raw[:20]))
        except InvalidEvent as exc:
            assert exc.kind in ("decode", "schema")
        else:
            assert isinstance(items, tuple)


def test_wrong_types_in_every_field_raise_only_invalid_event() -> None:
    fmt = DebeziumFormat()
    odd: list[Any] = [
        None,
        True,
        1,
        1.5,
        "x",
        [],
        {},
        ["x"],
        {"a": []},
        "__debezium_unavailable_value",
    ]
    template = _change(
        "u",
        _row(
            category="A > B", keywords="k", attributes="{}", channels="web", locale="en", tenant="t"
        ),
    )
    for part in ("payload", "after", "source"):
        target = template if part == "payload" else template[part]
        for name in list(target):
            for value in odd:
                changed = json.loads(json.dumps(template))
                (changed if part == "payload" else changed[part])[name] = value
                with contextlib.suppress(InvalidEvent):
                    fmt.decode(_record(changed, key={"id": 7}))


def test_no_write_back() -> None:
    assert DebeziumFormat().encode_update(None) is None  # type: ignore[arg-type]


def test_base64_placeholder_matches_documented_text() -> None:
    assert (
        base64.b64decode("X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==")
        == b"__debezium_unavailable_value"
    )
