"""One copy identity: the recipe from which both a suggestion's id and its cache key come.

The recipe is everything that shapes a suggestion's copy: the tenant, the product's content,
the channel and that channel's rules, and what ModelInfo names (model and revision, adapter and
version, prompt, learned layouts, decoding parameters, the checks' version and settings).
Equal recipes give equal ids and keys in any process; a change to any part changes both, so
the same id always means the same copy.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict
from functools import lru_cache

from copyflow.plugins.channels import get_channel
from copyflow.schemas import ModelInfo

# Fixed forever: suggestion ids must stay stable across releases and machines.
SUGGESTION_NAMESPACE = uuid.UUID("6f1d2c4e-8b1a-5e0f-9c3d-2a7b4e5f6a10")


@lru_cache(maxsize=256)
def channel_rules_digest(channel: str) -> str:
    """The channel's limits, style rules and prompt guidance, as they are in this process."""
    rules = asdict(get_channel(channel))
    text = "\x1f".join(f"{name}={rules[name]!r}" for name in sorted(rules))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def recipe(tenant: str, content_hash: str, channel: str, model: ModelInfo) -> str:
    """The copy's recipe as one string. model: the job's own (its adapter named)."""
    parts = (
        tenant,
        content_hash,
        channel,
        channel_rules_digest(channel),
        model.base,
        model.revision,
        model.adapter or "",
        model.adapter_version or "",
        model.prompt_version,
        model.layouts_version or "",
        model.decoding or "",
        model.checks or "",
    )
    return "\x1f".join(parts)


def suggestion_id(recipe_text: str) -> uuid.UUID:
    return uuid.uuid5(SUGGESTION_NAMESPACE, recipe_text)


def recipe_digest(recipe_text: str) -> str:
    """The recipe as a cache key's name part."""
    return hashlib.sha256(recipe_text.encode()).hexdigest()
