"""The catalog-format extension point: a catalog system's Kafka records <-> copyflow's contracts.

A format sees one whole record (key, value, headers, topic, timestamp) and returns what it
says about the catalog: zero or more product events (one per locale, say), deletions, or
events whose source left some fields out. It raises InvalidEvent when the record says
nothing usable; the worker dead-letters it with the kind and reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from copyflow.schemas import ProductEvent, Suggestion

# A user's hook that fetches a resource a thin event only names: (format name, the event's
# reference to the resource) -> the resource's JSON document, or None when it is gone.
Fetch: TypeAlias = Callable[[str, Mapping[str, Any]], Mapping[str, Any] | None]


class InvalidEvent(ValueError):
    """A record that cannot become product events; kind and reason go to the dead-letter topic.

    Kinds: decode (not readable), schema (readable, not valid), unavailable (a field left out
    by the source with no earlier content to take it from), payload_not_included (a thin
    event and no fetch hook), and any a format adds."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CatalogRecord:
    """One Kafka record as a format sees it (copyflow's own type, not the client's)."""

    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    topic: str = ""
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        """The last header of this name, compared case-insensitively (HTTP bridges differ)."""
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found


@dataclass(frozen=True, slots=True)
class ProductDeleted:
    """The catalog deleted a product: its skip state goes, and a tombstone (its key, no value)
    goes to the suggestions topic so that a compacted topic forgets it."""

    id: str
    tenant: str
    product_id: str
    source: str


@dataclass(frozen=True, slots=True)
class PartialEvent:
    """A product event whose source left some Product fields out because they did not change
    (Debezium's unchanged TOAST columns). The worker fills them from the product's previous
    content, or dead-letters the event (kind unavailable) when it knows none."""

    event: ProductEvent
    unavailable: frozenset[str]


Decoded: TypeAlias = ProductEvent | ProductDeleted | PartialEvent


@dataclass(frozen=True)
class FormatContext:
    """What a format is made with: the default tenant for records that name none, its own
    options (formats.options.<name>) and the user's fetch hook, if any."""

    tenant: str = "default"
    options: Mapping[str, Any] = field(default_factory=dict)
    fetch: Fetch | None = None


class CatalogFormat:
    """Base of every format. Subclasses set name and implement decode; a format that can
    write accepted copy back in its catalog's own terms implements encode_update."""

    name: ClassVar[str]
    # Sources that redeliver (webhooks retried) send one event several times under one id: a
    # format that says so has an event id handled before dropped.
    dedupe_events: ClassVar[bool] = False
    # Sources that may leave unchanged fields out (PartialEvent) need each product's content
    # kept to fill them in.
    keeps_content: ClassVar[bool] = False

    def __init__(self, context: FormatContext | None = None) -> None:
        self.context = context or FormatContext()

    def decode(self, record: CatalogRecord) -> Sequence[Decoded]:
        """The record's product events and deletions (maybe none); raises InvalidEvent."""
        raise NotImplementedError

    def encode_update(self, suggestion: Suggestion) -> bytes | None:
        """The suggestion as the catalog's own update document; None: this format has none."""
        return None
