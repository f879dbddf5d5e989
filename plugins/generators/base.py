"""The Generator extension point."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from copyflow.schemas import ModelInfo, Product

# A prepared model directory's manifest: {"source": ..., "revision": ...}.
MANIFEST = "copyflow-model.json"


@dataclass(frozen=True)
class GenerationRequest:
    product: Product
    channel: str
    adapter: str | None = None  # a LoRA adapter the generator has loaded; None: the base model


@dataclass(frozen=True)
class GenerationResult:
    """Raw model output and its strict parse; a parse failure is data, not an exception."""

    raw_text: str
    title: str | None
    description: str | None
    parse_error: str | None
    prompt_tokens: int
    new_tokens: int


class Generator(Protocol):
    """Takes a batch of requests and returns one result per request, in order."""

    @property
    def model_info(self) -> ModelInfo: ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...
