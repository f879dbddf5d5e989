"""What the built-in formats share: reading a record's JSON, HTML to text, and building a
valid ProductEvent (or saying clearly why not)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from pydantic import ValidationError

from copyflow.plugins.catalog.base import CatalogRecord, InvalidEvent
from copyflow.schemas import Product, ProductEvent

# Far more than any product document: deeper nesting is an attack or a bug, and Python's
# parser would spend the stack on it.
_MAX_DEPTH = 64


def parse_json(data: bytes | str, what: str = "value") -> Any:
    """The JSON document in data; InvalidEvent(decode) names what is wrong (not UTF-8, not
    JSON, nested too deep)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEvent("decode", f"{what} is not UTF-8: {exc}") from None
    try:
        document = json.loads(data)
    except RecursionError:
        raise InvalidEvent("decode", f"{what}: JSON nested too deep") from None
    except ValueError as exc:
        raise InvalidEvent("decode", f"{what} is not JSON: {exc}") from None
    if _depth(document) > _MAX_DEPTH:
        raise InvalidEvent("decode", f"{what}: JSON nested deeper than {_MAX_DEPTH} levels")
    return document


def _depth(document: Any) -> int:
    deepest, stack = 0, [(document, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > _MAX_DEPTH:
            return level
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def record_json(record: CatalogRecord) -> Any:
    """The record's value as JSON; a record without a value is InvalidEvent(decode)."""
    if record.value is None:
        raise InvalidEvent("decode", "empty message (no value)")
    return parse_json(record.value)


def expect_object(document: Any, what: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InvalidEvent("schema", f"{what}: expected a JSON object, got {_kind(document)}")
    return document


def text_field(document: Mapping[str, Any], name: str, what: str) -> str | None:
    """document[name] as text: a string, or a number (ids often are); None when absent."""
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidEvent("schema", f"{what}.{name}: expected a string, got {_kind(value)}")
    return str(value)


def required_text(document: Mapping[str, Any], name: str, what: str) -> str:
    value = text_field(document, name, what)
    if value is None or not value.strip():
        raise InvalidEvent("schema", f"{what}.{name}: missing")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def header_text(record: CatalogRecord, name: str) -> str | None:
    value = record.header(name)
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("decode", f"header {name} is not UTF-8") from None


def record_time(record: CatalogRecord) -> datetime:
    """The record's own timestamp (now when it has none)."""
    if record.timestamp_ms is None or record.timestamp_ms < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)


def product_event(
    *,
    id: str,
    updated: bool,
    source: str,
    time: datetime | str,
    tenant: str,
    product: Mapping[str, Any],
) -> ProductEvent:
    """A validated ProductEvent; InvalidEvent(schema) lists what is invalid."""
    try:
        return ProductEvent(
            id=id,
            type="product.updated" if updated else "product.created",
            source=source,
            time=time,  # type: ignore[arg-type]  # pydantic parses text times
            tenant=tenant,
            data=Product.model_validate(product),
        )
    except ValidationError as exc:
        raise schema_error(exc) from None


def schema_error(exc: ValidationError, prefix: str = "") -> InvalidEvent:
    problems = "; ".join(
        f"{prefix}{'.'.join(str(p) for p in err['loc']) or '<event>'}: {err['msg']}"
        for err in exc.errors(include_url=False)[:10]
    )
    more = exc.error_count() - 10
    return InvalidEvent("schema", problems + (f" (and {more} more)" if more > 0 else ""))


def locale_tag(code: str) -> str:
    """A catalog's locale code as a BCP 47 tag: en_US -> en-US, de -> de."""
    return code.replace("_", "-")


class _Text(HTMLParser):
    _BREAKS = frozenset({"p", "br", "li", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


# A tag; [^<>] keeps the match linear on text full of "<".
_TAG = re.compile(r"<[A-Za-z/!][^<>]*>")


def html_to_text(markup: str) -> str:
    """Plain text from an HTML fragment: tags, scripts and styles out, entities decoded, one
    block element per line, spaces collapsed."""
    parser = _Text()
    try:
        parser.feed(markup)
        parser.close()
    except AssertionError:  # html.parser on a malformed marked section ("<![ x")
        return " ".join(_TAG.sub(" ", markup).split())
    text = html.unescape("".join(parser.parts))
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def text_or_html_to_text(text: str) -> str:
    """Text as it is; text with tags (a rich-text field's HTML) as plain text."""
    return html_to_text(text) if _TAG.search(text) else text


def check_options(fmt: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
    """ValueError naming the options a format does not know (a typo stops start-up)."""
    names = sorted(known)
    unknown = sorted(map(str, set(options) - set(names)))
    if unknown:
        raise ValueError(
            f"{fmt}: unknown option(s) {', '.join(unknown)}; known: {', '.join(names) or 'none'}"
        )


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (one per line), escaped."""
    paragraphs = [line.strip() for line in text.split("\n") if line.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def split_tags(tags: str | Sequence[Any]) -> list[str]:
    """Tags as a list: Shopify sends "a, b, c", others a list."""
    items = tags.split(",") if isinstance(tags, str) else [str(t) for t in tags]
    return list(dict.fromkeys(t.strip() for t in items if str(t).strip()))


_SPACES = re.compile(r"\s+")


def one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()
