"""The bad-input corpus every catalog format must survive: each item is a dead letter (or, for
a record of a kind the format ignores, nothing), never a crash."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from copyflow.plugins.catalog import (
    CatalogFormat,
    CatalogRecord,
    InvalidEvent,
    PartialEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.records import read_records
from copyflow.schemas import ProductEvent

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "formats"
EXPECTED = REPO / "tests" / "fixtures" / "formats"


def cases(stem: str) -> list[tuple[CatalogRecord, dict[str, Any]]]:
    """Each example record with its hand-written expectation line."""
    records = example_records(stem)
    lines = (EXPECTED / f"{stem}.expected.jsonl").read_text().splitlines()
    expected = [json.loads(line) for line in lines if line.strip()]
    assert len(records) == len(expected), f"{stem}: one expectation per record"
    return list(zip(records, expected, strict=True))


def outcome(fmt: CatalogFormat, record: CatalogRecord) -> dict[str, Any]:
    """What a format made of a record, in the expectation files' terms."""
    try:
        items = fmt.decode(record)
    except InvalidEvent as exc:
        return {"events": [], "deleted": [], "partial": [], "dead": exc.kind}
    events = [i.event if isinstance(i, PartialEvent) else i for i in items]
    return {
        "events": [e.model_dump(mode="json") for e in events if isinstance(e, ProductEvent)],
        "deleted": [
            {"tenant": d.tenant, "product_id": d.product_id}
            for d in items
            if isinstance(d, ProductDeleted)
        ],
        "partial": sorted(f for i in items if isinstance(i, PartialEvent) for f in i.unavailable),
        "dead": None,
    }


def expected_outcome(line: dict[str, Any]) -> dict[str, Any]:
    """An expectation line as outcome() gives it (events normalised through the contract)."""
    return {
        "events": [ProductEvent.model_validate(e).model_dump(mode="json") for e in line["events"]],
        "deleted": line["deleted"],
        "partial": sorted(line.get("partial") or []),
        "dead": line["dead"],
    }


def example_records(stem: str) -> list[CatalogRecord]:
    return [record for _, record in read_records(EXAMPLES / f"{stem}.records.jsonl")]


@dataclass
class Stream:
    """A topic's records in one format and what they must give."""

    name: str
    fmt: str
    records: list[CatalogRecord]
    events: list[ProductEvent] = field(default_factory=list)  # the equivalent ProductEvents
    deleted: list[tuple[str, str]] = field(default_factory=list)
    dead: Counter[str] = field(default_factory=Counter)


def expected_stream(name: str) -> Stream:
    """The example stream and its hand-written expectation; a partial event's equivalent is
    the event with the product's previous content in the fields its source left out."""
    stream = Stream(name, name.split("-")[0], example_records(name))
    lines = (EXPECTED / f"{name}.expected.jsonl").read_text().splitlines()
    assert len(lines) == len(stream.records), f"{name}: one expectation per record"
    latest: dict[tuple[str, str, str], ProductEvent] = {}
    for line in map(json.loads, lines):
        if line.get("dead"):
            stream.dead[line["dead"]] += 1
        for item in line.get("events", []):
            event = ProductEvent.model_validate(item)
            key = (event.tenant, event.data.product_id, event.data.locale)
            missing = line.get("partial") or []
            if missing:
                before = latest[key].data
                data = event.data.model_copy(update={f: getattr(before, f) for f in missing})
                event = event.model_copy(update={"data": data})
            latest[key] = event
            stream.events.append(event)
        for gone in line.get("deleted", []):
            stream.deleted.append((gone["tenant"], gone["product_id"]))
    return stream


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def corpus(examples: list[CatalogRecord], seed: int = 0) -> list[tuple[str, CatalogRecord]]:
    """(what it is, record): each keeps an example's key and headers (so that header-driven
    paths, CloudEvents' binary mode or Shopify's topic header, read the bad value)."""
    rng = random.Random(seed)
    valued = [r for r in examples if r.value]
    items: list[tuple[str, CatalogRecord]] = []
    for n, base in enumerate(valued[:3]):
        value = base.value or b""
        items += [
            (f"random bytes {n}", replace(base, value=rng.randbytes(rng.randint(1, 400)))),
            (f"truncated {n}", replace(base, value=value[: len(value) // 2])),
            (f"invalid UTF-8 {n}", replace(base, value=value[:10] + b"\xff\xfe\xc3" + value[10:])),
        ]
    base = valued[0]
    huge = {f"k{i}": "v" * 8 for i in range(20_000)}
    items += [
        ("empty value", replace(base, value=b"")),
        ("JSON null", replace(base, value=b"null")),
        ("JSON list", replace(base, value=b"[1, 2, 3]")),
        ("JSON string", replace(base, value=b'"product"')),
        ("huge map", replace(base, value=json.dumps(huge).encode())),
        ("deep nesting", replace(base, value=_nested(5_000))),
    ]
    return items


def wrong_types(example: CatalogRecord) -> list[tuple[str, CatalogRecord]]:
    """The example with each field of its JSON replaced by values of the wrong type, at every
    depth (a format may accept some, never crash on any)."""
    document = json.loads(example.value or b"null")
    variants: list[tuple[str, CatalogRecord]] = []

    def walk(node: object, path: list[str | int]) -> None:
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            for wrong in (None, 7, True, "x", [], {}, [1, {"a": None}], 1e308):
                if type(wrong) is type(child):
                    continue
                variants.append(
                    (
                        f"{'.'.join(map(str, [*path, key]))}={wrong!r}",
                        _with(example, document, [*path, key], wrong),
                    )
                )
            walk(child, [*path, key])

    walk(document, [])
    return variants


def _with(
    example: CatalogRecord, document: object, path: list[str | int], value: object
) -> CatalogRecord:
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return replace(example, value=json.dumps(copy).encode())
