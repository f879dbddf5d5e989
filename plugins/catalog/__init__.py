"""Catalog adapters: a catalog system's wire format <-> the schemas contracts."""

from copyflow.plugins.catalog.base import CatalogAdapter, InvalidEvent
from copyflow.plugins.catalog.json_events import JsonCatalogAdapter

__all__ = ["CatalogAdapter", "InvalidEvent", "JsonCatalogAdapter"]
