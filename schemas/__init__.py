"""Contracts and settings. Imports nothing else of copyflow's."""

from copyflow.schemas.events import (
    CONTRACTS,
    SCHEMA_VERSION,
    AdapterReleased,
    CheckResult,
    Feedback,
    LayoutsReleased,
    ModelInfo,
    Product,
    ProductEvent,
    Suggestion,
    TitleSlot,
)
from copyflow.schemas.settings import Settings, SettingsError, load_settings

__all__ = [
    "CONTRACTS",
    "SCHEMA_VERSION",
    "AdapterReleased",
    "CheckResult",
    "Feedback",
    "LayoutsReleased",
    "ModelInfo",
    "Product",
    "ProductEvent",
    "Settings",
    "SettingsError",
    "Suggestion",
    "TitleSlot",
    "load_settings",
]
