"""Scores for a set of (item, title, description) copies.

- The judge's figures (judge_figures): what a merchant would check before accepting a title:
  improved, product type kept, new content words, dropped numbers, incomplete descriptions,
  broken characters, fallbacks, titles scoring below the cleaned original. The same judge
  (plugins.judge) picks copyflow's own copy, so these read its verdicts on every system.
- Reference overlap: ROUGE-L and BLEU-4 against the data's reference text, over characters
  for CJK text (the product's locale is zh, ja or ko, or the reference holds CJK: such text
  has no spaces to split words at), over word tokens otherwise.
- length, coverage, grounding, duplicates, diversity (score).
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from copyflow.evaluation.data import Item
from copyflow.plugins.candidates import clean_title
from copyflow.plugins.channels import ChannelRules
from copyflow.plugins.judge import Judge, Judgement, ProductFacts
from copyflow.plugins.similarity import rouge_l, rouge_l_of, tokens
from copyflow.plugins.text import CJK, is_cjk_locale
from copyflow.plugins.validators import Grounding, covers

__all__ = [
    "Copy",
    "Referee",
    "bleu",
    "by_characters",
    "covers",
    "distinct_n",
    "judge_figures",
    "overlap_tokens",
    "rouge_l",
    "rouge_l_chars",
    "rouge_l_for",
    "score",
    "source_shares",
]

# A title counts as improved when the judge scores it above the original by more than this
# (the reviewer's own margin) and it differs from the original.
IMPROVEMENT_MARGIN = 1e-3
# A title scores below the cleaned original when it is lower by more than rounding.
BELOW_CLEANED_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Copy:
    item: Item
    title: str
    description: str
    # What copyflow's reviewer says of its own copy (Suggestion fields); None for the other
    # systems, which the judge's scores are compared for instead.
    improved: bool | None = None
    fallback_used: bool | None = None
    title_source: str | None = None
    description_source: str | None = None


def by_characters(locale: str, reference: str) -> bool:
    """Whether overlap with this reference is counted over characters (CJK text) rather
    than word tokens."""
    return is_cjk_locale(locale) or CJK.search(reference) is not None


def overlap_tokens(text: str, characters: bool = False) -> list[str]:
    """What ROUGE-L and BLEU count: lower-cased word tokens, or with characters=True every
    letter and digit (NFKC, lower case; spaces and punctuation left out)."""
    if not characters:
        return tokens(text)
    return [c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum()]


def rouge_l_chars(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over characters (letters and digits), for text without word spaces."""
    return rouge_l_of(overlap_tokens(candidate, True), overlap_tokens(reference, True))


def rouge_l_for(candidate: str, reference: str, locale: str) -> float:
    """ROUGE-L F1 over characters for CJK text (see by_characters), word tokens otherwise."""
    if by_characters(locale, reference):
        return rouge_l_chars(candidate, reference)
    return rouge_l(candidate, reference)


def bleu(
    candidates: Sequence[str],
    references: Sequence[str],
    max_n: int = 4,
    characters: Sequence[bool] | None = None,
) -> float:
    """Corpus BLEU-4 (one reference each, no smoothing), on lower-cased word tokens; a pair
    whose characters flag is set is counted over characters (CJK)."""
    flags = characters if characters is not None else [False] * len(candidates)
    matches = [0] * max_n
    totals = [0] * max_n
    candidate_length = reference_length = 0
    for candidate, reference, chars in zip(candidates, references, flags, strict=True):
        c, r = overlap_tokens(candidate, chars), overlap_tokens(reference, chars)
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


def score(
    copies: Sequence[Copy], rules: ChannelRules, referee: Referee | None = None
) -> dict[str, float | None]:
    """The figures for one system's copies (rates are shares in 0..1); with a referee, the
    judge's figures too."""
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
            (getattr(c, field), ref, by_characters(c.item.product.locale, ref))
            for c in copies
            if (ref := getattr(c.item, f"reference_{field}"))
        ]
        if pairs:
            figures[f"rouge_l_{field}"] = sum(
                rouge_l_chars(a, b) if chars else rouge_l(a, b) for a, b, chars in pairs
            ) / len(pairs)
            figures[f"bleu_{field}"] = bleu(
                [a for a, _, _ in pairs],
                [b for _, b, _ in pairs],
                characters=[c for *_, c in pairs],
            )
    if referee is not None:
        figures.update(judge_figures(copies, referee))
    return figures


@dataclass(frozen=True)
class Baseline:
    """The judge's view of one product: its facts and the scores its copy is compared to."""

    facts: ProductFacts
    original_title: Judgement
    cleaned_title: Judgement


@dataclass(frozen=True)
class Verdict:
    """The judge's findings on one copy."""

    title: Judgement
    description: Judgement
    baseline: Baseline


class Referee:
    """The judge for one channel, with each product's facts and the scores of its original
    and cleaned titles worked out once for every system that is scored."""

    def __init__(self, rules: ChannelRules, judge: Judge | None = None) -> None:
        self.rules = rules
        self.judge = judge or Judge()
        self._baselines: dict[int, tuple[Item, Baseline]] = {}

    def baseline(self, item: Item) -> Baseline:
        known = self._baselines.get(id(item))
        if known is not None and known[0] is item:
            return known[1]
        product = item.product
        facts = ProductFacts.of(product)
        cleaned = clean_title(product, self.rules.title_max)
        baseline = Baseline(
            facts,
            self.judge.title(facts, self.rules, product.title),
            self.judge.title(facts, self.rules, cleaned),
        )
        self._baselines[id(item)] = (item, baseline)
        return baseline

    def verdict(self, copy: Copy) -> Verdict:
        baseline = self.baseline(copy.item)
        facts = baseline.facts
        return Verdict(
            self.judge.title(facts, self.rules, copy.title),
            self.judge.description(facts, self.rules, copy.description, copy.title),
            baseline,
        )


def _passed(judgement: Judgement, name: str) -> bool:
    finding = judgement.finding(name)
    return finding is not None and finding.passed


def _failed(judgement: Judgement, name: str) -> bool:
    finding = judgement.finding(name)
    return finding is not None and not finding.passed


def improved_title(copy: Copy, verdict: Verdict) -> bool:
    """The title is changed and better than the original: by the reviewer's own word for
    copyflow's copy (Suggestion.improved), by the judge's scores for the other systems."""
    changed = _passed(verdict.title, "changed")
    if copy.improved is not None:
        return copy.improved and changed
    better = verdict.title.score > verdict.baseline.original_title.score + IMPROVEMENT_MARGIN
    return better and changed


def judge_figures(copies: Sequence[Copy], referee: Referee) -> dict[str, float | None]:
    """The judge's figures for one system's copies (shares in 0..1). An empty title keeps no
    product type and drops the original's numbers; an empty description is counted apart
    from an incomplete one."""
    n = len(copies)
    if n == 0:
        return {}
    counts: Counter[str] = Counter()
    title_scores = description_scores = 0.0
    for copy in copies:
        verdict = referee.verdict(copy)
        title, description, facts = verdict.title, verdict.description, verdict.baseline.facts
        empty_title = not copy.title.strip()
        counts["improved_title"] += improved_title(copy, verdict)
        counts["type_kept"] += (
            _passed(title, "type_kept") if not empty_title else facts.type_phrase is None
        )
        counts["new_words"] += _failed(title, "new_words")
        counts["dropped_numbers"] += (
            _failed(title, "numbers_kept") if not empty_title else bool(facts.title_numbers)
        )
        counts["incomplete_description"] += _failed(description, "complete")
        counts["broken_characters"] += _failed(title, "well_formed") or _failed(
            description, "well_formed"
        )
        counts["below_cleaned"] += (
            title.score < verdict.baseline.cleaned_title.score - BELOW_CLEANED_TOLERANCE
        )
        counts["empty_title"] += empty_title
        counts["empty_description"] += not copy.description.strip()
        title_scores += title.score
        description_scores += description.score
    flagged = [c.fallback_used for c in copies if c.fallback_used is not None]
    return {
        "improved_title_rate": counts["improved_title"] / n,
        "type_kept_rate": counts["type_kept"] / n,
        "new_words_rate": counts["new_words"] / n,
        "dropped_numbers_rate": counts["dropped_numbers"] / n,
        "incomplete_description_rate": counts["incomplete_description"] / n,
        "broken_characters_rate": counts["broken_characters"] / n,
        "fallback_rate": sum(flagged) / len(flagged) if flagged else None,
        "below_cleaned_rate": counts["below_cleaned"] / n,
        "empty_title_rate": counts["empty_title"] / n,
        "empty_description_rate": counts["empty_description"] / n,
        "mean_title_score": title_scores / n,
        "mean_description_score": description_scores / n,
    }


def source_shares(copies: Sequence[Copy]) -> dict[str, dict[str, float]]:
    """Share of copies by the candidate that won their title and their description (copies
    that name no source are left out)."""
    shares: dict[str, dict[str, float]] = {}
    for field in ("title", "description"):
        sources = Counter(
            source for c in copies if (source := getattr(c, f"{field}_source")) is not None
        )
        total = sum(sources.values())
        shares[field] = {k: v / total for k, v in sorted(sources.items(), key=lambda kv: -kv[1])}
    return shares
