"""Record files: Kafka records written down as JSON lines, for examples, tests, `copyflow
generate`, backfills and the demo.

A file named ``*.records.jsonl`` holds one record per line::

    {"key": "42", "headers": {"ce_type": "product.created"}, "value": {...}, "timestamp_ms": 0}

``value`` is a JSON document (sent compactly as UTF-8), a string (sent as its UTF-8 bytes),
or null (a tombstone); ``key``, ``headers`` and ``timestamp_ms`` are optional. In any other
file each line is one record's value, as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from copyflow.plugins.catalog.base import CatalogRecord

RECORDS_SUFFIX = ".records.jsonl"


class RecordFileError(ValueError):
    pass


def is_record_file(path: Path) -> bool:
    return path.name.endswith(RECORDS_SUFFIX)


def read_records(path: Path, topic: str = "") -> Iterator[tuple[int, CatalogRecord]]:
    """(line number, record) for each non-blank line of the file."""
    enveloped = is_record_file(path)
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if not enveloped:
                yield number, CatalogRecord(value=line.rstrip(b"\r\n"), topic=topic)
                continue
            try:
                yield number, record_from_json(json.loads(line), topic)
            except (ValueError, TypeError) as exc:
                raise RecordFileError(f"{path}:{number}: not a record: {exc}") from None


def record_from_json(line: Any, topic: str = "") -> CatalogRecord:
    if not isinstance(line, dict) or "value" not in line:
        raise ValueError('expected an object with "value" (and "key", "headers")')
    value = line["value"]
    if isinstance(value, str):
        raw: bytes | None = value.encode()
    elif value is None:
        raw = None
    else:
        raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    headers = line.get("headers") or {}
    pairs = headers.items() if isinstance(headers, dict) else headers
    key = line.get("key")
    return CatalogRecord(
        value=raw,
        key=None if key is None else str(key).encode(),
        headers=tuple((str(name), str(text).encode()) for name, text in pairs),
        topic=str(line.get("topic", topic)),
        timestamp_ms=line.get("timestamp_ms"),
    )
