"""Catalog formats: the built-ins and any registered by other packages through the entry-point
group ``copyflow.formats`` (each entry point names a CatalogFormat subclass, or any callable
that takes a FormatContext and returns a CatalogFormat)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import entry_points

from copyflow.plugins.catalog.base import (
    CatalogFormat,
    CatalogRecord,
    Decoded,
    Fetch,
    FormatContext,
    InvalidEvent,
    PartialEvent,
    ProductDeleted,
)
from copyflow.plugins.catalog.formats.copyflow import CopyflowFormat

__all__ = [
    "CatalogFormat",
    "CatalogRecord",
    "CopyflowFormat",
    "Decoded",
    "Fetch",
    "FormatContext",
    "InvalidEvent",
    "PartialEvent",
    "ProductDeleted",
    "UnknownFormat",
    "format_names",
    "make_format",
]

FormatFactory = Callable[[FormatContext], CatalogFormat]
ENTRY_POINT_GROUP = "copyflow.formats"


class UnknownFormat(KeyError):
    pass


def _builtins() -> dict[str, FormatFactory]:
    # Imported here: each format module is only loaded when the registry is first asked.
    from copyflow.plugins.catalog.formats.akeneo import AkeneoFormat
    from copyflow.plugins.catalog.formats.cloudevents import CloudEventsFormat
    from copyflow.plugins.catalog.formats.commercetools import CommercetoolsFormat
    from copyflow.plugins.catalog.formats.debezium import DebeziumFormat
    from copyflow.plugins.catalog.formats.shopify import ShopifyFormat

    classes: list[type[CatalogFormat]] = [
        CopyflowFormat,
        CloudEventsFormat,
        DebeziumFormat,
        ShopifyFormat,
        CommercetoolsFormat,
        AkeneoFormat,
    ]
    return {cls.name: cls for cls in classes}


@cache
def _factories() -> dict[str, FormatFactory]:
    found = _builtins()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry.load()
    return found


def format_names() -> list[str]:
    return sorted(_factories())


def make_format(name: str, context: FormatContext | None = None) -> CatalogFormat:
    """The format registered under name, made with context. Raises UnknownFormat, or
    ValueError when its options are invalid."""
    try:
        factory = _factories()[name]
    except KeyError:
        known = ", ".join(format_names())
        raise UnknownFormat(f"unknown format {name!r}; known: {known}") from None
    made = factory(context or FormatContext())
    if not isinstance(made, CatalogFormat):
        raise TypeError(f"format {name!r} did not make a CatalogFormat (got {type(made).__name__})")
    return made
