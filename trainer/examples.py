"""Training examples from merchants' decisions, kept per tenant in a folder of JSONL files.

An accepted suggestion teaches its own text; an edited one teaches the merchant's final text;
a rejected one is kept for evaluation only. One example per suggestion: a later decision on
the same suggestion replaces the earlier one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from copyflow.schemas import Feedback, Product, Suggestion

GLOBAL = "_global"  # the registry scope (and store folder) of the adapter every tenant shares
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class Example(BaseModel):
    example_id: str
    tenant: str
    channel: str
    product: Product
    title: str
    description: str
    action: Literal["accepted", "edited", "rejected"]

    @property
    def trainable(self) -> bool:
        return self.action != "rejected"


def from_decision(suggestion: Suggestion, feedback: Feedback) -> Example:
    """The example a merchant's decision on a suggestion gives."""
    title, description = suggestion.title, suggestion.description
    if feedback.action == "edited":
        title = feedback.final_title or title
        description = feedback.final_description or description
    return Example(
        example_id=str(suggestion.suggestion_id),
        tenant=suggestion.tenant,
        channel=suggestion.channel,
        product=suggestion.input,
        title=title,
        description=description,
        action=feedback.action,
    )


def folder_name(tenant: str) -> str:
    """A file-system-safe folder per tenant that no two tenant names share."""
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:8]
    return f"{_SAFE.sub('_', tenant)[:64]}-{digest}"


class ExampleStore:
    """Appends examples to <root>/<tenant folder>/examples.jsonl; reading keeps the last
    decision per example id, so appending is the only write and a crash loses nothing."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    def _file(self, tenant: str) -> Path:
        return self.root / folder_name(tenant) / "examples.jsonl"

    def add(self, examples: Iterable[Example]) -> int:
        """Append examples; returns how many were new or changed a stored decision."""
        by_tenant: dict[str, list[Example]] = {}
        for example in examples:
            by_tenant.setdefault(example.tenant, []).append(example)
        changed = 0
        for tenant, batch in by_tenant.items():
            known = {e.example_id: e for e in self.load(tenant)}
            fresh = [e for e in batch if known.get(e.example_id) != e]
            if not fresh:
                continue
            path = self._file(tenant)
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "tenant").write_text(tenant)
            with path.open("a") as handle:
                for example in fresh:
                    handle.write(example.model_dump_json() + "\n")
                    known[example.example_id] = example
            changed += len(fresh)
        return changed

    def load(self, tenant: str) -> list[Example]:
        path = self._file(tenant)
        if not path.is_file():
            return []
        latest: dict[str, Example] = {}
        text = path.read_text()
        # A line still being appended (no newline yet) is not read until it is complete.
        for line in text[: text.rfind("\n") + 1].splitlines():
            if line.strip():
                example = Example.model_validate(json.loads(line))
                latest.pop(example.example_id, None)  # re-insert: order by last decision
                latest[example.example_id] = example
        return list(latest.values())

    def tenants(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            (folder / "tenant").read_text()
            for folder in self.root.iterdir()
            if (folder / "tenant").is_file()
        )
