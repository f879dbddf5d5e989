"""The channel-rules extension point: each sales channel's limits and style for copy."""

from __future__ import annotations

import re
from dataclasses import dataclass

from copyflow.schemas import CheckResult

_ALL_CAPS = re.compile(r"\b[A-Z]{4,}\b")


def truncate_words(text: str, limit: int) -> str:
    """At most limit characters, cut at a word boundary (never inside a word), without a
    trailing separator. A single word longer than the limit is cut hard."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[: limit + 1] else text[:limit]
    # Never empty: a first word longer than the limit is cut hard.
    return cut.rstrip(" ,;:-/|&")[:limit] or text[:limit]


def has_phrase(text: str, phrase: str) -> bool:
    """The phrase as whole words, any case ("sale" is not in "wholesale", "#1" not in "#10")."""
    return re.search(rf"(?<![\w#]){re.escape(phrase)}(?![\w])", text, re.IGNORECASE) is not None


def _no_shouting(text: str) -> str:
    return _ALL_CAPS.sub(lambda m: m.group(0).capitalize(), text)


@dataclass(frozen=True)
class ChannelRules:
    """Limits and style of one channel; ``guidance`` goes into the prompt."""

    name: str
    title_max: int
    description_max: int
    promotional_phrases: tuple[str, ...] = ()
    no_all_caps_words: bool = False
    guidance: str = ""

    def style_problems(self, title: str, description: str) -> list[str]:
        """What in the copy breaks this channel's style rules (fit() fixes length and capitals)."""
        text = f"{title}\n{description}"
        found = [p for p in self.promotional_phrases if has_phrase(text, p)]
        return [f"promotional phrase {p!r}" for p in found]

    def fit(self, title: str, description: str) -> tuple[str, str, CheckResult]:
        """Title and description within this channel's limits, cut at word boundaries."""
        cut = []
        if self.no_all_caps_words:
            # Short all-caps tokens are usually units or codes (USB, LED); longer ones shout.
            shouting = sorted(set(_ALL_CAPS.findall(f"{title} {description}")))
            if shouting:
                title, description = _no_shouting(title), _no_shouting(description)
                cut.append(f"capitals lowered: {', '.join(shouting)}")
        fitted_title = truncate_words(title, self.title_max)
        fitted_description = truncate_words(description, self.description_max)
        if fitted_title != " ".join(title.split()):
            cut.append(f"title cut from {len(title)} to {len(fitted_title)} chars")
        if fitted_description != " ".join(description.split()):
            cut.append(
                f"description cut from {len(description)} to {len(fitted_description)} chars"
            )
        check = CheckResult(
            name="length",
            passed=True,
            detail="; ".join(cut) or f"within {self.title_max}/{self.description_max} chars",
        )
        return fitted_title, fitted_description, check
