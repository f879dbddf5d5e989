"""Event contracts exchanged over Kafka.

Inputs are forward compatible (unknown fields are ignored); every model here is what
producers in other languages validate against through the exported JSON Schema.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import to_json

SCHEMA_VERSION: Literal["1"] = "1"

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=1_000)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]


def _now() -> datetime:
    return datetime.now(UTC)


class _Input(BaseModel):
    """Inbound contracts: tolerate fields added by newer producers."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _Output(BaseModel):
    """Outbound contracts: what we publish is exactly what the schema says."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Product(_Input):
    """The catalog's view of one product: the content copyflow rewrites."""

    product_id: NonEmpty
    sku: NonEmpty | None = None
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] = "en-US"
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1_000)]
    description: LongText = ""
    brand: ShortText | None = None
    category: list[ShortText] = Field(default_factory=list, max_length=16)
    attributes: dict[NonEmpty, ShortText] = Field(default_factory=dict, max_length=200)
    keywords: list[ShortText] = Field(default_factory=list, max_length=100)
    channels: list[NonEmpty] = Field(
        default_factory=lambda: ["default"],
        min_length=1,
        max_length=16,
        description="Target channels; one suggestion is made per channel.",
    )

    def content_hash(self) -> str:
        """sha256 over the fields that shape the copy (not channels, price, stock, ...)."""
        # The canonical form is compact JSON, UTF-8, keys sorted. Keys are written in sorted
        # order here, so pydantic's serializer (half the time of json.dumps) writes exactly the
        # bytes json.dumps(sort_keys=True, ensure_ascii=False) would: hashes never change.
        content = {
            "attributes": dict(sorted(self.attributes.items())),
            "brand": self.brand,
            "category": self.category,
            "description": self.description,
            "keywords": self.keywords,
            "locale": self.locale,
            "title": self.title,
        }
        return hashlib.sha256(to_json(content)).hexdigest()


class ProductEvent(_Input):
    """CloudEvents-style envelope around a Product, as catalog services emit it."""

    id: NonEmpty
    type: Literal["product.created", "product.updated"]
    source: NonEmpty
    time: datetime
    tenant: NonEmpty = Field(description="Merchant id; adapters and caches are per tenant.")
    schema_version: Literal["1"] = SCHEMA_VERSION
    data: Product


class ModelInfo(_Output):
    """What made a suggestion's copy: model, adapter, prompt, decoding and checks. All of it
    is part of the suggestion's identity (consumer.identity)."""

    base: str
    revision: str
    adapter: str | None = None
    adapter_version: str | None = None
    prompt_version: str
    layouts_version: str | None = Field(
        default=None, description="The tenant's learned title layouts, when any were used."
    )
    decoding: str | None = Field(
        default=None, description="The decoding parameters the generator ran with."
    )
    checks: str | None = Field(
        default=None, description="Digest of the checks' version and settings (banned phrases)."
    )


class CheckResult(_Output):
    name: str
    passed: bool
    detail: str = ""


class Suggestion(_Output):
    """An optimized title and description for one product and channel."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    suggestion_id: UUID = Field(
        description="Deterministic: same tenant, content, channel and versions, same id."
    )
    product_id: str
    tenant: str
    source_event_id: str
    channel: str
    title: Annotated[str, StringConstraints(min_length=1)]
    description: str
    model: ModelInfo
    checks: list[CheckResult]
    fallback_used: bool = Field(
        description="True when the title is not the model's (nor its repair): the judge chose "
        "the cleaned or composed title, or the original."
    )
    improved: bool | None = Field(
        default=None,
        description="Whether the copy scores better than the merchant's original (None: made "
        "before copyflow judged copy).",
    )
    title_source: str | None = Field(
        default=None,
        description="The winning title candidate: original, cleaned, composed, repaired, model.",
    )
    description_source: str | None = Field(
        default=None,
        description="The winning description candidate: original, cleaned, template, "
        "repaired, model.",
    )
    reason: str | None = Field(default=None, description="Why those candidates won.")
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="The judge's scores: title, original_title, description, original_description.",
    )
    cache_hit: bool = False
    latency_ms: float = Field(ge=0)
    content_hash: str
    input: Product = Field(description="The product as generated from, for training on feedback.")
    created_at: datetime = Field(default_factory=_now)


class Feedback(_Input):
    """A merchant's decision on a suggestion."""

    suggestion_id: UUID
    product_id: NonEmpty
    tenant: NonEmpty
    action: Literal["accepted", "edited", "rejected"]
    final_title: ShortText | None = None
    final_description: LongText | None = None
    reason: ShortText | None = None
    time: datetime = Field(default_factory=_now)

    @model_validator(mode="after")
    def _edited_has_text(self) -> Feedback:
        if self.action == "edited" and not (self.final_title or self.final_description):
            raise ValueError("an 'edited' decision needs final_title or final_description")
        return self


class AdapterReleased(_Output):
    """Control event: from now on this adapter version makes the scope's copy (a tenant's,
    or every tenant's without its own). Published on release, promote and rollback."""

    type: Literal["adapter.released"] = "adapter.released"
    tenant: str | None = Field(default=None, description="None for the global adapter.")
    adapter_version: str | None = Field(
        description="None: the scope goes back to the base model (a rollback past its first "
        "release)."
    )
    base_model: str
    base_revision: str = Field(description="Workers serving another revision ignore it.")
    prompt_version: str = Field(
        description="The prompt the adapter was trained with; workers ask it with this prompt "
        "and name it in the copy's model info (a version they do not know: they ignore it)."
    )
    location: str = Field(description="The adapter's folder in the registry.")
    metrics: dict[str, float] = Field(default_factory=dict)
    time: datetime = Field(default_factory=_now)


# The parts of a title a layout orders: brand, the rest of the name, gender, color, product
# type, and what follows the type from its first number on.
TitleSlot = Literal["brand", "name", "gender", "color", "type", "specs"]


class LayoutsReleased(_Output):
    """Control event: from now on these title layouts, learned from the scope's accepted
    titles, lay out its composed titles (a tenant's, or every tenant's without its own)."""

    type: Literal["layouts.released"] = "layouts.released"
    tenant: str | None = Field(default=None, description="None for every tenant's layouts.")
    version: str = Field(description="Names the layouts; part of the copy's identity.")
    layouts: dict[str, list[TitleSlot]] = Field(
        description="Layout key (category:<leaf>, type:<product type> or * for the whole "
        "scope) -> the order of the title's parts. Empty: back to the default layout."
    )
    titles: int = Field(default=0, ge=0, description="Accepted titles they were learned from.")
    time: datetime = Field(default_factory=_now)


CONTRACTS: dict[str, type[BaseModel]] = {
    "product_event": ProductEvent,
    "suggestion": Suggestion,
    "feedback": Feedback,
    "adapter_released": AdapterReleased,
    "layouts_released": LayoutsReleased,
}
