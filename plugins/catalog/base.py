"""The CatalogAdapter extension point."""

from __future__ import annotations

from typing import Literal, Protocol

from copyflow.schemas import ProductEvent, Suggestion

InvalidKind = Literal["decode", "schema"]


class InvalidEvent(ValueError):
    """An event that cannot become a ProductEvent; kind and reason go to the dead-letter topic."""

    def __init__(self, kind: InvalidKind, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind: InvalidKind = kind
        self.reason = reason


class CatalogAdapter(Protocol):
    def decode(self, raw: bytes) -> ProductEvent:
        """Turn one wire message into a ProductEvent or raise InvalidEvent."""
        ...

    def encode(self, suggestion: Suggestion) -> bytes: ...
