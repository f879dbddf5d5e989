"""Scores for a set of (item, title, description) copies: length, coverage, grounding,
duplicates, diversity, and overlap with reference text (ROUGE-L, BLEU-4)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from copyflow.evaluation.data import Item
from plugins.channels import ChannelRules
from plugins.similarity import rouge_l, tokens
from plugins.validators import Grounding, covers


@dataclass(frozen=True)
class Copy:
    item: Item
    title: str
    description: str


def bleu(candidates: Sequence[str], references: Sequence[str], max_n: int = 4) -> float:
    """Corpus BLEU-4 (one reference each, no smoothing), on lower-cased word tokens."""
    matches = [0] * max_n
    totals = [0] * max_n
    candidate_length = reference_length = 0
    for candidate, reference in zip(candidates, references, strict=True):
        c, r = tokens(candidate), tokens(reference)
        candidate_length += len(c)
        reference_length += len(r)
        for n in range(1, max_n + 1):
            c_grams = Counter(tuple(c[i : i + n]) for i in range(len(c) - n + 1))
            r_grams = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            matches[n - 1] += sum(min(count, r_grams[g]) for g, count in c_grams.items())
            totals[n - 1] += max(0, len(c) - n + 1)
    if candidate_length == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    brevity = min(0.0, 1 - reference_length / candidate_length)
    return math.exp(brevity + log_precision)


def distinct_n(texts: Sequence[str], n: int) -> float:
    grams = [
        tuple(t[i : i + n]) for text in texts for t in [tokens(text)] for i in range(len(t) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def score(copies: Sequence[Copy], rules: ChannelRules) -> dict[str, float | None]:
    """The headline figures for one system's copies (rates are shares in 0..1)."""
    n = len(copies)
    if n == 0:
        return {"products": 0}
    compliant = sum(
        len(c.title) <= rules.title_max and len(c.description) <= rules.description_max
        for c in copies
    )
    covered: Counter[str] = Counter()
    given: Counter[str] = Counter()
    for c in copies:
        text = f"{c.title}\n{c.description}"
        for name, value in c.item.key_attributes.items():
            given[name] += 1
            covered[name] += covers(text, name, value)
    unsupported = sum(
        bool(Grounding.of(c.item.product).unsupported(f"{c.title}\n{c.description}"))
        for c in copies
    )
    titles = Counter(c.title.strip().lower() for c in copies)
    figures: dict[str, float | None] = {
        "products": n,
        "length_compliance": compliant / n,
        "coverage": sum(covered.values()) / sum(given.values()) if given else None,
        "unsupported_rate": unsupported / n,
        "duplicate_title_rate": sum(k for k in titles.values() if k > 1) / n,
        "distinct_1": distinct_n([f"{c.title} {c.description}" for c in copies], 1),
        "distinct_2": distinct_n([f"{c.title} {c.description}" for c in copies], 2),
        "mean_title_chars": sum(len(c.title) for c in copies) / n,
    }
    for name in ("brand", "product_type", "color", "gender"):
        figures[f"coverage_{name}"] = covered[name] / given[name] if given[name] else None
    for field in ("title", "description"):
        pairs = [
            (getattr(c, field), ref)
            for c in copies
            if (ref := getattr(c.item, f"reference_{field}"))
        ]
        if pairs:
            figures[f"rouge_l_{field}"] = sum(rouge_l(a, b) for a, b in pairs) / len(pairs)
            figures[f"bleu_{field}"] = bleu([a for a, _ in pairs], [b for _, b in pairs])
    return figures
