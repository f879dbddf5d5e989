"""The deterministic template copy used when generated copy cannot be trusted."""

from __future__ import annotations

import re

from plugins.lexicon import INJECTION
from schemas import Product


def split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?\n])\s+", text) if s.strip()]


def split_injected(text: str) -> tuple[list[str], list[str]]:
    """The sentences before the first instruction-like one, and that one with all after it
    (an injected instruction's payload usually follows it)."""
    sentences = split_sentences(text)
    for index, sentence in enumerate(sentences):
        if INJECTION.search(sentence):
            return sentences[:index], sentences[index:]
    return sentences, []


def template_copy(product: Product) -> tuple[str, str]:
    """A title and description built only from the product's own fields."""
    title = " ".join(product.title.split())
    if product.brand and product.brand.lower() not in title.lower():
        title = f"{product.brand} {title}"
    # The merchant's own description, less what tries to instruct a model.
    kept, _ = split_injected(product.description)
    description = " ".join(" ".join(kept).split())
    if not description:
        facts = [f"{name}: {value}" for name, value in sorted(product.attributes.items())]
        description = title + (". " + "; ".join(facts) + "." if facts else ".")
    return title, description
