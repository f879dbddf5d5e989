"""`copyflow backfill`: a catalog dump as product events.

With --format, each line is a document of that catalog format (or a whole record, in a
*.records.jsonl file), read by the worker's processing as if it came from the format's topic.
Without it:

Reads JSONL (ProductEvents, bare Products, or rows of the shared fashion_styles and myntra
files) or CSV (columns product_id, title, and optionally description, brand, locale, category
as "A > B", keywords as "a|b", channels as "a|b", and attr.NAME for each attribute). Every
event's id is derived from its line's content, so backfilling the same file again makes the
same events, and the same suggestions.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from copyflow.evaluation.data import DataError, item_from_row
from copyflow.plugins.catalog.records import RecordFileError, read_records
from copyflow.schemas import Product, ProductEvent


@dataclass(frozen=True)
class Line:
    number: int
    event: bytes | None  # the record's value (a ProductEvent as JSON); None when the line is bad
    error: str = ""
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


def read_format_records(path: Path) -> Iterator[Line]:
    """A file of another format's documents (or whole records, in a *.records.jsonl file),
    as they would arrive on its topic; the worker's processing reads them in that format."""
    try:
        for number, record in read_records(path):
            yield Line(number, record.value or b"", key=record.key, headers=record.headers)
    except RecordFileError as exc:
        raise DataError(str(exc)) from None


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def read_catalog(path: Path, tenant: str) -> Iterator[Line]:
    if path.suffix.lower() == ".csv":
        yield from _csv(path, tenant)
    elif path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
        yield from _jsonl(path, tenant)
    else:
        raise DataError(f"{path}: a catalog is .jsonl or .csv")


def _event(product: Product, tenant: str, raw: bytes, source: str) -> bytes:
    event = ProductEvent(
        id="backfill-" + hashlib.sha256(raw).hexdigest()[:24],
        type="product.created",
        source=source,
        time=datetime.now(UTC),
        tenant=tenant,
        data=product,
    )
    return event.model_dump_json(exclude_none=True).encode()


def _jsonl(path: Path, tenant: str) -> Iterator[Line]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                if "data" in row:  # already a ProductEvent: kept as it is, tenant included
                    yield Line(number, ProductEvent.model_validate(row).model_dump_json().encode())
                    continue
                product = item_from_row(row).product
            except (ValueError, KeyError, ValidationError) as exc:
                yield Line(number, None, _reason(exc))
                continue
            yield Line(number, _event(product, tenant, raw, f"backfill://{path.name}"))


def _csv(path: Path, tenant: str) -> Iterator[Line]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"product_id", "title"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: the header lacks {', '.join(sorted(missing))}")
        for row in reader:
            number = reader.line_num
            fields = {k: v for k, v in row.items() if k is not None and v not in (None, "")}
            product: dict[str, object] = {
                k: fields[k]
                for k in ("product_id", "title", "description", "brand", "locale")
                if k in fields
            }
            if "category" in fields:
                product["category"] = [c.strip() for c in fields["category"].split(">")]
            for name in ("keywords", "channels"):
                if name in fields:
                    product[name] = [v.strip() for v in fields[name].split("|") if v.strip()]
            product["attributes"] = {
                k.removeprefix("attr."): v for k, v in fields.items() if k.startswith("attr.")
            }
            try:
                parsed = Product.model_validate(product)
            except ValidationError as exc:
                yield Line(number, None, _reason(exc))
                continue
            raw = json.dumps(row, sort_keys=True).encode()
            yield Line(number, _event(parsed, tenant, raw, f"backfill://{path.name}"))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = exc.error_count() - 1
        return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")
    return f"{type(exc).__name__}: {exc}"
