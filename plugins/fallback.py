"""Splitting product text into sentences, and the instruction-like part out of it."""

from __future__ import annotations

import re

from copyflow.plugins.lexicon import INJECTION


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
