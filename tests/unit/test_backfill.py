"""Catalog dumps as product events: formats, bad lines, stable ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copyflow.backfill import read_catalog
from copyflow.evaluation.data import DataError
from copyflow.schemas import ProductEvent


def events(path: Path, tenant: str = "shop") -> list[ProductEvent | str]:
    return [
        ProductEvent.model_validate_json(line.event)
        if line.event
        else f"{line.number}: {line.error}"
        for line in read_catalog(path, tenant)
    ]


def test_csv_rows_become_events_and_bad_rows_say_why(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "product_id,title,brand,category,keywords,attr.color\n"
        "p1,Blue mug,Acme,Kitchen > Mugs,mug|blue,blue\n"
        "p2,,Acme,,,\n"
        "p3,Red cup,,,,\n"
    )
    first, bad, third = events(catalog)
    assert isinstance(first, ProductEvent) and isinstance(third, ProductEvent)
    assert first.tenant == "shop" and first.data.category == ["Kitchen", "Mugs"]
    assert first.data.keywords == ["mug", "blue"] and first.data.attributes == {"color": "blue"}
    assert bad == "3: title: Field required"
    assert events(catalog)[0].id == first.id  # type: ignore[union-attr]


def test_jsonl_takes_events_products_and_the_shared_formats(tmp_path: Path) -> None:
    event = {
        "id": "e1",
        "type": "product.created",
        "source": "s",
        "time": "2026-11-01T00:00:00Z",
        "tenant": "own",
        "data": {"product_id": "p1", "title": "Mug"},
    }
    fashion = {
        "id": "15970",
        "title": "Turtle Check Men Navy Blue Shirt",
        "gender": "Men",
        "master_category": "Apparel",
        "sub_category": "Topwear",
        "color": "Navy Blue",
    }
    catalog = tmp_path / "catalog.jsonl"
    lines = [event, {"product_id": "p2", "title": "Cup"}, fashion, ["not an object"]]
    catalog.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n{oops\n")
    own, bare, shirt, wrong, broken = events(catalog)
    assert isinstance(own, ProductEvent) and own.tenant == "own"  # an event keeps its tenant
    assert isinstance(bare, ProductEvent) and bare.tenant == "shop"
    assert isinstance(shirt, ProductEvent) and shirt.data.attributes["color"] == "Navy Blue"
    assert wrong.startswith("4: ") and broken.startswith("6: ")  # type: ignore[union-attr]
    # The same line makes the same event id: backfilling a file again is idempotent.
    assert events(catalog)[1].id == bare.id  # type: ignore[union-attr]


def test_other_formats_and_headers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "c.xml").write_text("<x/>")
    with pytest.raises(DataError, match=r"jsonl or \.csv"):
        list(read_catalog(tmp_path / "c.xml", "shop"))
    (tmp_path / "c.csv").write_text("sku,name\n1,x\n")
    with pytest.raises(DataError, match="lacks product_id, title"):
        list(read_catalog(tmp_path / "c.csv", "shop"))
