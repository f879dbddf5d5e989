"""The Akeneo format: Events API webhook bodies (product.created / updated / removed), values
chosen by locale and scope, thin events (Event Platform CloudEvents, events without values)
through the fetch hook, and the REST API PATCH body written back."""

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
from copyflow.plugins.catalog.formats.akeneo import AkeneoFormat
from copyflow.schemas import ModelInfo, Product, ProductEvent, Suggestion
from tests.corpus import cases, corpus, example_records, wrong_types

ROOT = Path(__file__).resolve().parents[2]
UUID = "5e0c2a9b-7d41-4c6f-9a3e-1b2c3d4e5f60"


def test_price_only_update_gives_the_same_products() -> None:
    examples = cases("akeneo")
    fmt = AkeneoFormat()
    copy_change, price_change = fmt.decode(examples[2][0]), fmt.decode(examples[3][0])
    assert len(copy_change) == len(price_change) == 2
    for first, second in zip(copy_change, price_change, strict=True):
        assert isinstance(first, ProductEvent) and isinstance(second, ProductEvent)
        assert first.data == second.data
        assert first.data.content_hash() == second.data.content_hash()


def test_name_and_redelivery() -> None:
    assert AkeneoFormat.name == "akeneo"
    assert AkeneoFormat.dedupe_events is True
    assert AkeneoFormat.keeps_content is False


# -- building events -----------------------------------------------------------------------


def _v(data: Any, locale: str | None = None, scope: str | None = None) -> dict[str, Any]:
    return {"locale": locale, "scope": scope, "data": data}


def _resource(**values: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "identifier": "CHAIR-OAK",
        "uuid": UUID,
        "enabled": True,
        "family": "chairs",
        "categories": ["furniture", "chairs"],
        "values": {
            "name": [_v("Oak Dining Chair", "en_US"), _v("Eichenstuhl", "de_DE")],
            "description": [
                _v("Solid oak chair.", "en_US", "ecommerce"),
                _v("Stuhl aus Eiche.", "de_DE", "ecommerce"),
            ],
            **values,
        },
    }


def _event(
    action: str = "product.created", resource: dict[str, Any] | None = None, **changes: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": action,
        "event_id": "ev-1",
        "event_datetime": "2025-06-01T12:00:00+00:00",
        "author": "peter",
        "author_type": "ui",
        "pim_source": "https://pim.example.org",
        "data": {"resource": _resource() if resource is None else resource},
    }
    event.update(changes)
    return event


def _record(value: Any, timestamp_ms: int | None = None, **headers: str) -> CatalogRecord:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return CatalogRecord(
        value=raw,
        headers=tuple((k, v.encode()) for k, v in headers.items()),
        timestamp_ms=timestamp_ms,
    )


def _events(items: Any) -> list[ProductEvent]:
    assert all(isinstance(i, ProductEvent) for i in items)
    return list(items)


def _decode(value: Any, fmt: AkeneoFormat | None = None) -> list[ProductEvent]:
    return _events((fmt or AkeneoFormat()).decode(_record(value)))


def _cloudevent(kind: str = "com.akeneo.pim.v1.product.updated", **product: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "ce-1",
        "source": "https://pim.example.org",
        "type": kind,
        "subject": "tenant-1",
        "time": "2025-06-01T13:00:00Z",
        "datacontenttype": "application/json",
        "data": {"product": {"uuid": UUID, **product}, "author": {"identifier": "peter"}},
    }


# -- events --------------------------------------------------------------------------------


def test_created_gives_one_event_per_locale_of_the_name() -> None:
    events = _decode({"events": [_event()]})
    assert [e.data.locale for e in events] == ["en-US", "de-DE"]
    assert [e.data.title for e in events] == ["Oak Dining Chair", "Eichenstuhl"]
    assert [e.data.description for e in events] == ["Solid oak chair.", "Stuhl aus Eiche."]
    for event in events:
        assert event.id == "ev-1"
        assert event.type == "product.created"
        assert event.source == "https://pim.example.org"
        assert event.tenant == "default"
        assert event.time == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
        assert event.data.product_id == "CHAIR-OAK"
        assert event.data.category == ["furniture", "chairs"]
        assert event.data.sku is None
        assert event.data.brand is None


def test_updated_is_an_update_and_one_event_needs_no_wrapper() -> None:
    events = _decode(_event("product.updated"))
    assert [e.type for e in events] == ["product.updated", "product.updated"]


def test_a_batch_gives_each_events_items_in_order() -> None:
    other = _resource()
    other["identifier"] = "TABLE-OAK"
    batch = {
        "events": [
            _event(),
            _event("product_model.updated", {"code": "chairs_model", "values": {}}),
            _event("product.removed", {"identifier": "STOOL-1", "uuid": UUID}, event_id="ev-3"),
            _event("product.updated", other, event_id="ev-4"),
        ]
    }
    items = AkeneoFormat(FormatContext(tenant="furnishings")).decode(_record(batch))
    assert [type(i).__name__ for i in items] == [
        "ProductEvent",
        "ProductEvent",
        "ProductDeleted",
        "ProductEvent",
        "ProductEvent",
    ]
    assert items[2] == ProductDeleted("ev-3", "furnishings", "STOOL-1", "https://pim.example.org")
    assert [i.data.product_id for i in _events(items[3:])] == ["TABLE-OAK", "TABLE-OAK"]


def test_removed_deletes_by_identifier_else_uuid() -> None:
    fmt = AkeneoFormat()
    by_identifier = fmt.decode(_record(_event("product.removed", {"identifier": "CHAIR-OAK"})))
    by_uuid = fmt.decode(_record(_event("product.removed", {"uuid": UUID})))
    assert by_identifier == (
        ProductDeleted("ev-1", "default", "CHAIR-OAK", "https://pim.example.org"),
    )
    assert by_uuid == (ProductDeleted("ev-1", "default", UUID, "https://pim.example.org"),)


@pytest.mark.parametrize("action", ["product_model.created", "product_model.removed", "x.y"])
def test_other_actions_give_nothing(action: str) -> None:
    assert AkeneoFormat().decode(_record(_event(action, {"code": "m"}))) == ()


def test_empty_batch_gives_nothing() -> None:
    assert AkeneoFormat().decode(_record({"events": []})) == ()


def test_id_source_and_time_fall_back() -> None:
    event = _event()
    del event["event_id"], event["pim_source"], event["event_datetime"]
    record = _record({"events": [event]}, timestamp_ms=1_748_779_200_000)
    events = _events(AkeneoFormat().decode(record))
    assert events[0].source == "akeneo"
    assert events[0].time == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert events[0].id.startswith("akeneo-") and events[0].id.endswith("-0")
    assert _events(AkeneoFormat().decode(record))[0].id == events[0].id  # deterministic


def test_uuid_is_the_id_without_an_identifier() -> None:
    resource = _resource()
    del resource["identifier"]
    assert _decode(_event(resource=resource))[0].data.product_id == UUID


def test_null_locale_names_use_the_locale_option() -> None:
    resource = _resource(name=[_v("Oak Chair")], description=[_v("Oak.", None, "ecommerce")])
    (default,) = _decode(_event(resource=resource))
    assert (default.data.locale, default.data.title) == ("en-US", "Oak Chair")
    fmt = AkeneoFormat(FormatContext(options={"locale": "fr_FR"}))
    (french,) = _decode(_event(resource=resource), fmt)
    assert (french.data.locale, french.data.title, french.data.description) == (
        "fr-FR",
        "Oak Chair",
        "Oak.",
    )


def test_a_null_locale_value_serves_every_locale() -> None:
    resource = _resource(
        name=[_v("Oak Chair", "en_US"), _v("Chaise en chêne", "fr_FR")],
        description=[_v("Every locale.", None, "ecommerce"), _v("English.", "en_US", None)],
    )
    english, french = _decode(_event(resource=resource))
    assert english.data.description == "English."  # this locale before every locale's
    assert french.data.description == "Every locale."


def test_values_are_chosen_for_the_scope_option_else_the_null_scope() -> None:
    resource = _resource(
        name=[_v("Oak Chair", "en_US")],
        description=[
            _v("Print copy.", "en_US", "print"),
            _v("Any channel.", "en_US", None),
            _v("Web copy.", "en_US", "ecommerce"),
        ],
        finish=[_v("matt", None, "print")],
    )
    (web,) = _decode(_event(resource=resource))
    assert web.data.description == "Web copy."
    assert web.data.attributes == {}
    fmt = AkeneoFormat(FormatContext(options={"scope": "print"}))
    (printed,) = _decode(_event(resource=resource), fmt)
    assert printed.data.description == "Print copy."
    assert printed.data.attributes == {"finish": "matt"}
    fmt = AkeneoFormat(FormatContext(options={"scope": "mobile"}))
    assert _decode(_event(resource=resource), fmt)[0].data.description == "Any channel."


def test_names_of_another_scope_only_are_no_title() -> None:
    resource = _resource(name=[_v("Print Name", "en_US", "print")])
    with pytest.raises(InvalidEvent) as info:
        AkeneoFormat().decode(_record(_event(resource=resource)))
    assert info.value.kind == "schema"
    assert "name" in info.value.reason


def test_value_shapes() -> None:
    resource = _resource(
        name=[_v("Oak Chair", "en_US")],
        brand=[_v("Holzwerk")],
        sku=[_v("CH-OAK-01")],
        color=[_v("natural")],
        seat_height_cm=[_v(46)],
        weight=[_v({"amount": "5.2500", "unit": "KILOGRAM"})],
        depth=[_v({"amount": 42, "unit": "CENTIMETER"})],
        rating=[_v(4.5)],
        legs=[_v(4.0)],
        stackable=[_v(False)],
        materials=[_v(["oak", "linen"])],
        sizes=[_v([38, 40])],
        care=[_v("Oil yearly", "en_US"), _v("Jährlich ölen", "de_DE")],
        price=[
            _v([{"amount": "199.00", "currency": "EUR"}, {"amount": "219.00", "currency": "USD"}])
        ],
        amount_only=[_v({"amount": "3", "currency": "EUR"})],
        assets=[_v([{"code": "img1"}])],
        nothing=[_v(None)],
        empty_list=[_v([])],
        blank=[_v("  ")],
    )
    (event,) = _decode(_event(resource=resource))
    assert event.data.brand == "Holzwerk"
    assert event.data.sku == "CH-OAK-01"
    assert event.data.keywords == []
    assert event.data.attributes == {
        "color": "natural",
        "seat_height_cm": "46",
        "weight": "5.2500 KILOGRAM",
        "depth": "42 CENTIMETER",
        "rating": "4.5",
        "legs": "4",
        "stackable": "false",
        "materials": "oak, linen",
        "sizes": "38, 40",
        "care": "Oil yearly",
    }


def test_attribute_options_map_fields() -> None:
    resource = _resource(
        name=[_v("Oak Chair", "en_US")],
        title=[_v("Oak Chair by Holzwerk", "en_US")],
        long_text=[_v("<p>Solid <b>oak</b>.</p><p>Linen seat.</p>", "en_US", "ecommerce")],
        maker=[_v("Holzwerk")],
        tags=[_v("chair, oak, dining")],
        code=[_v("CH-1")],
    )
    options = {
        "name_attribute": "title",
        "description_attribute": "long_text",
        "brand_attribute": "maker",
        "keywords_attribute": "tags",
        "sku_attribute": "code",
    }
    (event,) = _decode(_event(resource=resource), AkeneoFormat(FormatContext(options=options)))
    assert event.data.title == "Oak Chair by Holzwerk"
    assert event.data.description == "Solid oak.\nLinen seat."
    assert event.data.brand == "Holzwerk"
    assert event.data.keywords == ["chair", "oak", "dining"]
    assert event.data.sku == "CH-1"
    assert event.data.attributes == {"name": "Oak Chair", "description": "Solid oak chair."}


def test_keywords_from_a_multi_select() -> None:
    resource = _resource(name=[_v("Oak Chair", "en_US")], tags=[_v(["chair", "oak", "chair"])])
    fmt = AkeneoFormat(FormatContext(options={"keywords_attribute": "tags"}))
    assert _decode(_event(resource=resource), fmt)[0].data.keywords == ["chair", "oak"]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"scope": 3}, "scope"),
        ({"locale": ""}, "locale"),
        ({"name_attribute": ["name"]}, "name_attribute"),
        ({"name_scope": False}, "name_scope"),
        ({"channel": "ecommerce"}, "channel"),
    ],
)
def test_invalid_options_name_the_option(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        AkeneoFormat(FormatContext(options=options))


def test_prices_never_reach_the_product() -> None:
    cheap = _resource(price=[_v([{"amount": "10.00", "currency": "EUR"}])])
    dear = _resource(price=[_v([{"amount": "99.00", "currency": "EUR"}])])
    first, second = _decode(_event(resource=cheap)), _decode(_event(resource=dear))
    assert [e.data for e in first] == [e.data for e in second]
    assert "price" not in first[0].data.attributes


# -- thin events and the fetch hook --------------------------------------------------------


def _fetched() -> dict[str, Any]:
    # The REST API's product document.
    resource = _resource()
    resource["values"]["name"] = [_v("Fetched Oak Chair", "en_US")]
    return resource


def test_thin_event_without_a_hook_is_a_dead_letter_naming_the_setting() -> None:
    thin = _event("product.updated", {"identifier": "CHAIR-OAK", "uuid": UUID})
    for value in (_cloudevent(), {"events": [thin]}):
        with pytest.raises(InvalidEvent) as info:
            AkeneoFormat().decode(_record(value))
        assert info.value.kind == "payload_not_included"
        assert "formats.fetch" in info.value.reason


def test_cloudevent_is_fetched_through_the_hook() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        calls.append((name, dict(reference)))
        return _fetched()

    (event,) = _decode(_cloudevent(), AkeneoFormat(FormatContext(fetch=fetch)))
    assert calls == [
        (
            "akeneo",
            {"uuid": UUID, "identifier": None, "type": "com.akeneo.pim.v1.product.updated"},
        )
    ]
    assert event.id == "ce-1"
    assert event.type == "product.updated"
    assert event.source == "https://pim.example.org"
    assert event.time == datetime(2025, 6, 1, 13, 0, tzinfo=UTC)
    assert (event.data.product_id, event.data.title) == ("CHAIR-OAK", "Fetched Oak Chair")


def test_event_without_values_is_fetched_through_the_hook() -> None:
    calls: list[dict[str, Any]] = []

    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        calls.append(dict(reference))
        return _fetched()

    thin = _event("product.created", {"identifier": "CHAIR-OAK", "uuid": UUID})
    (event,) = _decode({"events": [thin]}, AkeneoFormat(FormatContext(fetch=fetch)))
    assert calls == [{"uuid": UUID, "identifier": "CHAIR-OAK", "type": "product.created"}]
    assert (event.id, event.type, event.data.title) == (
        "ev-1",
        "product.created",
        "Fetched Oak Chair",
    )


def test_binary_mode_cloudevent_reads_the_headers() -> None:
    fmt = AkeneoFormat(FormatContext(fetch=lambda name, reference: _fetched()))
    record = _record(
        {"product": {"uuid": UUID}},
        ce_type="com.akeneo.pim.v1.product.created",
        ce_id="ce-9",
        ce_source="pim-eu",
        ce_time="2025-06-02T08:00:00Z",
    )
    (event,) = _events(fmt.decode(record))
    assert (event.id, event.type, event.source) == ("ce-9", "product.created", "pim-eu")
    assert event.time == datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


def test_cloudevent_with_values_needs_no_fetch() -> None:
    values = _resource()["values"]
    events = _decode(_cloudevent(identifier="CHAIR-OAK", values=values))
    assert [e.data.title for e in events] == ["Oak Dining Chair", "Eichenstuhl"]


def test_cloudevent_deletion_and_other_types() -> None:
    fmt = AkeneoFormat()
    deleted = fmt.decode(_record(_cloudevent("com.akeneo.pim.v1.product.deleted")))
    assert deleted == (ProductDeleted("ce-1", "default", UUID, "https://pim.example.org"),)
    model = _cloudevent("com.akeneo.pim.v1.product-model.updated")
    model["data"] = {"product_model": {"code": "chairs_model"}}
    assert fmt.decode(_record(model)) == ()


def test_delta_event_is_fetched() -> None:
    fmt = AkeneoFormat(FormatContext(fetch=lambda name, reference: _fetched()))
    (event,) = _events(fmt.decode(_record(_cloudevent("com.akeneo.pim.v1.product.updated.delta"))))
    assert event.type == "product.updated"


def test_a_product_gone_since_gives_nothing() -> None:
    fmt = AkeneoFormat(FormatContext(fetch=lambda name, reference: None))
    assert fmt.decode(_record(_cloudevent())) == ()


def test_a_hook_that_raises_is_a_fetch_dead_letter() -> None:
    def fetch(name: str, reference: Mapping[str, Any]) -> Mapping[str, Any] | None:
        raise TimeoutError("PIM did not answer in 5 s")

    with pytest.raises(InvalidEvent) as info:
        AkeneoFormat(FormatContext(fetch=fetch)).decode(_record(_cloudevent()))
    assert info.value.kind == "fetch"
    assert "TimeoutError: PIM did not answer in 5 s" in info.value.reason


def test_a_hook_that_returns_no_object_is_a_fetch_dead_letter() -> None:
    fmt = AkeneoFormat(FormatContext(fetch=lambda name, reference: "CHAIR-OAK"))  # type: ignore[arg-type, return-value]
    with pytest.raises(InvalidEvent) as info:
        fmt.decode(_record(_cloudevent()))
    assert info.value.kind == "fetch"


def test_an_invalid_fetched_product_is_a_schema_dead_letter() -> None:
    fmt = AkeneoFormat(FormatContext(fetch=lambda name, reference: {"identifier": "X"}))
    with pytest.raises(InvalidEvent) as info:
        fmt.decode(_record(_cloudevent()))
    assert info.value.kind == "schema"


# -- write-back ----------------------------------------------------------------------------


def _suggestion(locale: str, description: str = "Solid oak, linen seat.") -> Suggestion:
    return Suggestion(
        suggestion_id=uuid.UUID(int=2),
        product_id="CHAIR-OAK",
        tenant="default",
        source_event_id="ev-1",
        channel="default",
        title="Holzwerk Oak Dining Chair",
        description=description,
        model=ModelInfo(base="m", revision="r", prompt_version="v1"),
        checks=[],
        fallback_used=False,
        latency_ms=1.0,
        content_hash="h",
        input=Product(product_id="CHAIR-OAK", title="Oak Dining Chair", locale=locale),
    )


def test_encode_update_is_the_patch_body() -> None:
    document = AkeneoFormat().encode_update(_suggestion("de-DE"))
    assert document is not None
    assert json.loads(document) == {
        "identifier": "CHAIR-OAK",
        "values": {
            "name": [{"locale": "de_DE", "scope": None, "data": "Holzwerk Oak Dining Chair"}],
            "description": [
                {"locale": "de_DE", "scope": "ecommerce", "data": "Solid oak, linen seat."}
            ],
        },
    }


def test_encode_update_follows_the_options() -> None:
    options = {
        "name_attribute": "title",
        "description_attribute": "long_text",
        "scope": "print",
        "name_scope": "print",
    }
    document = AkeneoFormat(FormatContext(options=options)).encode_update(
        _suggestion("en-US", description="")
    )
    assert document is not None
    assert json.loads(document) == {
        "identifier": "CHAIR-OAK",
        "values": {
            "title": [{"locale": "en_US", "scope": "print", "data": "Holzwerk Oak Dining Chair"}]
        },
    }


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"\xff\xfe\x00garbage", "decode"),
        (b'{"events": [{"action": ', "decode"),
        (b"[]", "schema"),
        (b"{}", "schema"),
        (b'{"events": {}}', "schema"),
        (b'{"events": [7]}', "schema"),
        (b'{"action": 7}', "schema"),
        (json.dumps(_event(data=None)).encode(), "schema"),
        (json.dumps(_event(data={"resource": []})).encode(), "schema"),
        (json.dumps(_event(resource={"identifier": "X", "values": []})).encode(), "schema"),
        (
            json.dumps(_event(resource=_resource(name=[_v({"en": "x"}, "en_US")]))).encode(),
            "schema",
        ),
        (
            json.dumps(_event(resource=_resource(name=[{"locale": 7, "data": "x"}]))).encode(),
            "schema",
        ),
        (
            json.dumps(_event(resource=_resource(description=[_v(["a"], "en_US")]))).encode(),
            "schema",
        ),
        (json.dumps(_event(resource={**_resource(), "categories": "chairs"})).encode(), "schema"),
        (
            json.dumps(_event(resource={**_resource(), "identifier": "", "uuid": None})).encode(),
            "schema",
        ),
        (json.dumps(_event(event_datetime="soon")).encode(), "schema"),
        (json.dumps({**_cloudevent(), "data": None}).encode(), "schema"),
        (json.dumps({**_cloudevent(), "type": None}).encode(), "schema"),
    ],
)
def test_bad_input_is_an_invalid_event(value: bytes, kind: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        AkeneoFormat().decode(CatalogRecord(value=value))
    assert info.value.kind == kind
    assert info.value.reason


def test_one_bad_event_dead_letters_the_whole_batch() -> None:
    batch = {"events": [_event(), _event(resource={"family": "chairs", "values": {}})]}
    with pytest.raises(InvalidEvent) as info:
        AkeneoFormat().decode(_record(batch))
    assert info.value.kind == "schema"
    assert "events[1]" in info.value.reason


def test_too_many_attributes_or_too_long_a_title_is_a_schema_dead_letter() -> None:
    many = _resource(**{f"a{i}": [_v("x")] for i in range(201)})
    long = _resource(name=[_v("x" * 1001, "en_US")])
    for resource in (many, long):
        with pytest.raises(InvalidEvent) as info:
            AkeneoFormat().decode(_record(_event(resource=resource)))
        assert info.value.kind == "schema"


def test_the_bad_input_corpus_gives_invalid_events_only() -> None:
    fmt = AkeneoFormat()
    for what, record in corpus(example_records("akeneo")):
        with pytest.raises(InvalidEvent) as info:
            fmt.decode(record)
        assert info.value.reason, what


def test_wrong_types_anywhere_never_crash() -> None:
    tried = 0
    for fmt in (AkeneoFormat(), AkeneoFormat(FormatContext(fetch=lambda n, r: _fetched()))):
        for example in example_records("akeneo"):
            if not example.value or not example.value.startswith(b"{"):
                continue
            for what, record in wrong_types(example):
                tried += 1
                try:
                    items: tuple[Decoded, ...] = tuple(fmt.decode(record))
                except InvalidEvent:
                    continue
                assert all(isinstance(i, ProductEvent | ProductDeleted) for i in items), what
    assert tried > 1000


def test_a_name_in_too_many_locales_is_a_schema_dead_letter() -> None:
    resource = _resource(name=[_v("Oak Chair", f"x{i:03d}") for i in range(101)])
    with pytest.raises(InvalidEvent) as info:
        AkeneoFormat().decode(_record(_event(resource=resource)))
    assert info.value.kind == "schema"
    assert "more than 100 locales" in info.value.reason


def test_categories_beyond_the_products_limit_are_left_out() -> None:
    resource = {**_resource(), "categories": [f"c{i}" for i in range(20)]}
    events = _decode(_event(resource=resource))
    assert events[0].data.category == [f"c{i}" for i in range(16)]
