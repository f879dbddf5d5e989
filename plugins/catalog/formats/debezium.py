"""Debezium change events for a products table (PostgreSQL, MySQL, ... connectors) as Kafka
Connect's JSON converter writes them: the change-event envelope with or without the schema
wrapper, tombstones, and rows flattened by the ExtractNewRecordState SMT.

A database has no update format of its own, so there is no write-back."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from copyflow.plugins.catalog.base import (
    CatalogFormat,
    CatalogRecord,
    Decoded,
    FormatContext,
    InvalidEvent,
    PartialEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.formats.common import (
    check_options,
    expect_object,
    locale_tag,
    parse_json,
    product_event,
    record_time,
)

DEFAULT_COLUMNS: dict[str, str] = {
    "product_id": "id",
    "sku": "sku",
    "title": "title",
    "description": "description",
    "brand": "brand",
    "category": "category",
    "keywords": "keywords",
    "attributes": "attributes",
    "locale": "locale",
    "tenant": "tenant",
    "channels": "channels",
}
UNAVAILABLE = "__debezium_unavailable_value"
_OPTIONS = frozenset({"columns", "table", "unavailable_value"})
# What an event holds in a field its source left out: valid, and replaced by the worker.
_PLACEHOLDERS: dict[str, Any] = {
    "sku": None,
    "title": "-",
    "description": "",
    "brand": None,
    "category": [],
    "keywords": [],
    "attributes": {},
    "channels": ["default"],
}
# The worker keys kept content by tenant, product and locale: those cannot be filled in.
_IDENTITY = ("product_id", "tenant", "locale")
_CREATED = frozenset({"c", "r"})


class DebeziumFormat(CatalogFormat):
    name = "debezium"
    keeps_content = True

    def __init__(self, context: FormatContext | None = None) -> None:
        super().__init__(context)
        options = self.context.options
        check_options(self.name, options, _OPTIONS)
        columns = options.get("columns", {})
        if not isinstance(columns, Mapping):
            raise ValueError("debezium option 'columns': expected a table of field = column")
        self.columns = dict(DEFAULT_COLUMNS)
        for field, column in columns.items():
            if field not in DEFAULT_COLUMNS:
                known = ", ".join(DEFAULT_COLUMNS)
                raise ValueError(
                    f"debezium option 'columns': unknown field {field!r}; known: {known}"
                )
            if not isinstance(column, str) or not column:
                raise ValueError(f"debezium option 'columns': {field!r} must name a column")
            self.columns[field] = column
        table = options.get("table")
        if table is not None and (not isinstance(table, str) or not table):
            raise ValueError("debezium option 'table': expected a table name")
        self.table: str | None = table
        placeholder = options.get("unavailable_value", UNAVAILABLE)
        if not isinstance(placeholder, str) or not placeholder:
            raise ValueError("debezium option 'unavailable_value': expected a non-empty string")
        # binary.handling.mode=base64 sends the placeholder of a bytea/blob column encoded.
        self.unavailable = frozenset(
            {placeholder, base64.b64encode(placeholder.encode()).decode("ascii")}
        )

    def decode(self, record: CatalogRecord) -> Sequence[Decoded]:
        if record.value is None:
            return (self._tombstone(record),)
        document = parse_json(record.value)
        if _wrapped(document) and document["payload"] is None:
            return (self._tombstone(record),)  # a tombstone in the schema wrapper
        document = expect_object(_unwrap(document), "value")
        event_id = "debezium-" + hashlib.sha256(record.value).hexdigest()[:24]
        if "op" in document and ("before" in document or "after" in document):
            return self._change(record, document, event_id)
        if _not_a_row(document):
            return ()
        return self._flattened(record, document, event_id)

    def _change(
        self, record: CatalogRecord, payload: dict[str, Any], event_id: str
    ) -> tuple[Decoded, ...]:
        op = payload["op"]
        if not isinstance(op, str):
            raise InvalidEvent("schema", "payload.op: expected a string")
        source = payload.get("source")
        source = {} if source is None else expect_object(source, "payload.source")
        table = _text(source.get("table"))
        if self.table is not None and not self._wanted(table, source):
            return ()
        where = f"debezium://{_text(source.get('name')) or 'unknown'}"
        if table:
            db = _text(source.get("db"))
            where += f"/{db}.{table}" if db else f"/{table}"
        if op == "d":
            before = payload.get("before")
            row = None if before is None else expect_object(before, "payload.before")
            return (self._deleted(record, row, event_id, where),)
        if op not in _CREATED and op != "u":
            return ()  # truncate, logical-decoding messages: nothing about one product
        after = expect_object(payload.get("after"), "payload.after")
        time = _millis(source.get("ts_ms"), "source.ts_ms") or _millis(
            payload.get("ts_ms"), "payload.ts_ms"
        )
        return (self._event(record, after, event_id, where, time, op == "u"),)

    def _flattened(
        self, record: CatalogRecord, row: dict[str, Any], event_id: str
    ) -> tuple[Decoded, ...]:
        table = _text(row.get("__table"))
        if self.table is not None and table and not self._wanted(table, {"db": row.get("__db")}):
            return ()
        where = "debezium://unknown"
        if table:
            db = _text(row.get("__db"))
            where = f"debezium://{_text(row.get('__name')) or 'unknown'}/"
            where += f"{db}.{table}" if db else table
        op = row.get("__op")
        if op is not None and not isinstance(op, str):
            raise InvalidEvent("schema", "__op: expected a string")
        if row.get("__deleted") in (True, "true") or op == "d":
            return (self._deleted(record, row, event_id, where),)
        if op is not None and op not in _CREATED and op != "u":
            return ()
        time = _millis(row.get("__source_ts_ms"), "__source_ts_ms") or _millis(
            row.get("__ts_ms"), "__ts_ms"
        )
        # Without __op a row is the table's current state: an update of what came before.
        return (self._event(record, row, event_id, where, time, op not in _CREATED),)

    def _wanted(self, table: str | None, source: Mapping[str, Any]) -> bool:
        if table is None:
            return False
        names = {table}
        for scope in ("schema", "db"):
            if prefix := _text(source.get(scope)):
                names.add(f"{prefix}.{table}")
        return self.table in names

    def _event(
        self,
        record: CatalogRecord,
        row: Mapping[str, Any],
        event_id: str,
        where: str,
        time: datetime | None,
        updated: bool,
    ) -> Decoded:
        product: dict[str, Any] = {}
        missing: set[str] = set()
        tenant = self.context.tenant
        for field, column in self.columns.items():
            value = row.get(column)
            if value is None:
                continue
            if self._is_unavailable(value):
                if field in _IDENTITY:
                    raise InvalidEvent(
                        "schema", f"{column}: unavailable ({field} cannot be filled in)"
                    )
                missing.add(field)
                product[field] = _PLACEHOLDERS[field]
            elif field == "tenant":
                tenant = _scalar(value, column)
            else:
                product[field] = _convert(field, value, column)
        if "product_id" not in product:
            raise InvalidEvent("schema", f"{self.columns['product_id']}: missing (the product id)")
        if "title" not in product:
            raise InvalidEvent("schema", f"{self.columns['title']}: missing (the title)")
        event = product_event(
            id=event_id,
            updated=updated,
            source=where,
            time=time or record_time(record),
            tenant=tenant,
            product=product,
        )
        return PartialEvent(event, frozenset(missing)) if missing else event

    def _deleted(
        self, record: CatalogRecord, row: Mapping[str, Any] | None, event_id: str, where: str
    ) -> ProductDeleted:
        found = self._identity(row) if row is not None else None
        if found is None:
            found = self._key_identity(record)
        if found is None:
            column = self.columns["product_id"]
            raise InvalidEvent("schema", f"delete without a product id ({column} in before or key)")
        product_id, tenant = found
        return ProductDeleted(id=event_id, tenant=tenant, product_id=product_id, source=where)

    def _tombstone(self, record: CatalogRecord) -> ProductDeleted:
        found = self._key_identity(record)
        if found is None:
            column = self.columns["product_id"]
            raise InvalidEvent("schema", f"tombstone whose key gives no product id ({column})")
        digest = hashlib.sha256(b"tombstone\0" + (record.key or b"")).hexdigest()[:24]
        return ProductDeleted(
            id=f"debezium-{digest}",
            tenant=found[1],
            product_id=found[0],
            source="debezium://unknown",
        )

    def _key_identity(self, record: CatalogRecord) -> tuple[str, str] | None:
        if record.key is None:
            return None
        try:
            key = _unwrap(parse_json(record.key, "key"))
        except InvalidEvent:
            return None
        if isinstance(key, dict):
            return self._identity(key)
        bare = self._plain(key)  # a key converter that wrote the bare id
        return None if bare is None else (bare, self.context.tenant)

    def _identity(self, row: Mapping[str, Any]) -> tuple[str, str] | None:
        """(product id, tenant) from a row or key; None when it has no usable id."""
        product_id, tenant = (
            self._plain(row.get(self.columns[f])) for f in ("product_id", "tenant")
        )
        if product_id is None:
            return None
        return product_id, tenant or self.context.tenant

    def _plain(self, value: Any) -> str | None:
        """A key column's value as text; None when it has none."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        text = str(value).strip()
        return None if not text or self._is_unavailable(text) else text

    def _is_unavailable(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self.unavailable
        # A one-dimensional array column left out holds the placeholder as its one element.
        return (
            isinstance(value, list)
            and len(value) == 1
            and isinstance(value[0], str)
            and value[0] in self.unavailable
        )


def _wrapped(document: Any) -> bool:
    """Kafka Connect's schema wrapper (schemas.enable=true)."""
    return isinstance(document, dict) and set(document) == {"schema", "payload"}


def _unwrap(document: Any) -> Any:
    return document["payload"] if _wrapped(document) else document


def _not_a_row(document: Mapping[str, Any]) -> bool:
    """Debezium's other messages, when a topic mixes them in: schema changes, transaction
    boundaries, heartbeats."""
    if "ddl" in document and ("tableChanges" in document or "databaseName" in document):
        return True
    if document.get("status") in ("BEGIN", "END") and "event_count" in document:
        return True
    return bool(document) and set(document) <= {"ts_ms"}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _millis(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(
            "schema", f"{what}: expected epoch milliseconds, got {type(value).__name__}"
        )
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent("schema", f"{what}: {value} is out of range") from None


def _scalar(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidEvent("schema", f"{what}: expected text, got {type(value).__name__}")
    return str(value)


def _convert(field: str, value: Any, column: str) -> Any:
    if field == "category":
        return _items(value, ">", column)
    if field in ("keywords", "channels"):
        return list(dict.fromkeys(_items(value, ",", column)))  # a repeat adds nothing
    if field == "attributes":
        return _attributes(value, column)
    text = _scalar(value, column)
    return locale_tag(text) if field == "locale" else text


def _items(value: Any, separator: str, column: str) -> list[str]:
    """A list column, a JSON column holding a list (the JSON converter sends it as text), or
    text with separators."""
    if isinstance(value, str):
        parsed = _json_text(value) if value.lstrip().startswith("[") else None
        if not isinstance(parsed, list):
            return [part.strip() for part in value.split(separator) if part.strip()]
        value = parsed
    if not isinstance(value, list):
        raise InvalidEvent(
            "schema", f"{column}: expected a list or text, got {type(value).__name__}"
        )
    items = (_scalar(item, f"{column}[]").strip() for item in value if item is not None)
    return [item for item in items if item]


def _attributes(value: Any, column: str) -> dict[str, str]:
    if isinstance(value, str):
        value = _json_text(value)
    if not isinstance(value, dict):
        raise InvalidEvent("schema", f"{column}: expected an object or its JSON text")
    attributes: dict[str, str] = {}
    for name, item in value.items():
        if item is None:
            continue
        if isinstance(item, bool):
            attributes[name] = "true" if item else "false"
        elif isinstance(item, list):
            attributes[name] = ", ".join(_scalar(part, f"{column}.{name}[]") for part in item)
        else:
            attributes[name] = _scalar(item, f"{column}.{name}")
    return attributes


def _json_text(text: str) -> Any:
    try:
        return parse_json(text, "column")
    except InvalidEvent:
        return None
