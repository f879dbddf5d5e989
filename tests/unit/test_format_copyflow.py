from __future__ import annotations

import json

import pytest

from copyflow.plugins.catalog import CatalogRecord, CopyflowFormat, InvalidEvent
from copyflow.schemas import ProductEvent
from tests.harness import product_event


def test_decodes_a_valid_event() -> None:
    (event,) = CopyflowFormat().decode(CatalogRecord(json.dumps(product_event(3)).encode()))
    assert isinstance(event, ProductEvent) and event.data.product_id == "p-3"


@pytest.mark.parametrize(
    ("raw", "kind", "reason"),
    [
        (b"{not json", "decode", "not JSON"),
        (b"\xff\xfe", "decode", "not JSON"),
        (b"[1, 2]", "decode", "expected a JSON object, got list"),
        (b"null", "decode", "expected a JSON object, got NoneType"),
        (b'{"id": "\xff"}', "decode", "not JSON: invalid unicode"),
        (b"", "decode", "not JSON"),
        (b'{"id": "x"}', "schema", "data: Field required"),
    ],
)
def test_invalid_events_say_why(raw: bytes, kind: str, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        CopyflowFormat().decode(CatalogRecord(raw))
    assert info.value.kind == kind
    assert reason in info.value.reason
