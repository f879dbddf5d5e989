"""Candidates and selection: for one product and channel, every candidate title and
description is scored by the judge and the best is published, never one that scores below
the cleaned original.

Title candidates: the model's, its repair, a composed title, the cleaned original and the
original itself. Description candidates: the model's (cut back to its last sentence), its
repair, the cleaned original, a template in the product's language, and the original. On a
tie the candidate that changes less wins, so a merchant is not asked to review a rewrite that
is no better than their own text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

from copyflow.plugins.candidates import (
    clean_description,
    clean_title,
    compose_title,
    fit_description,
    fit_title,
    template_description,
)
from copyflow.plugins.channels import ChannelRules
from copyflow.plugins.channels.base import has_phrase
from copyflow.plugins.judge import Judge, Judgement, ProductFacts, new_words
from copyflow.plugins.text import CJK, complete_sentences, holds_type, norm, words
from copyflow.plugins.validators import complete_title
from copyflow.schemas import CheckResult, Product, TitleSlot

# Bump when a check or the selection changes: cached copy then misses and is reviewed anew.
CHECKS_VERSION = "4"

# Candidates in the order that wins ties: the less it changes, the earlier.
TITLE_SOURCES = ("original", "cleaned", "composed", "repaired", "model")
DESCRIPTION_SOURCES = ("original", "cleaned", "template", "repaired", "model")
MODEL_SOURCES = frozenset({"model", "repaired"})
# A candidate must beat the original by this much to count as an improvement. A description
# must be clearly better (finished, filled, fixed), not only one attribute sentence longer.
_MARGIN = 1e-3
_DESCRIPTION_MARGIN = 0.2
_SENTENCE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s*")


@dataclass(frozen=True)
class Reviewed:
    """The copy chosen for one product and channel, and why."""

    title: str
    description: str
    checks: list[CheckResult]
    fallback_used: bool  # the title is not the model's (nor its repair)
    improved: bool = True
    title_source: str = "model"
    description_source: str = "model"
    reason: str = ""
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Choice:
    source: str
    text: str
    judgement: Judgement


def _best(choices: Sequence[_Choice]) -> _Choice:
    """The highest score. On a tie the merchant's own text stays; between changes, the model's
    text (or its repair) wins over the rule-made ones: it is what a trained adapter learnt of
    the shop's style, and the judge finds nothing to prefer in the other."""
    best = choices[0]
    for choice in choices[1:]:
        gain = choice.judgement.score - best.judgement.score
        tie_to_model = (
            abs(gain) <= 1e-9 and choice.source in MODEL_SOURCES and best.source != "original"
        )
        if gain > 1e-9 or tie_to_model:
            best = choice
    return best


def _learned(titles: Sequence[_Choice]) -> _Choice | None:
    """The model's own title, else its repair, where a learned model's is to be taken (see
    review)."""
    merchants = max(c.judgement.score for c in titles if c.source in ("original", "cleaned"))
    for source in ("model", "repaired"):
        own = next((c for c in titles if c.source == source and c.judgement.ok), None)
        if own is not None and own.judgement.score >= merchants - 1e-9:
            return own
    return None


def _faults(judgement: Judgement) -> str:
    return "; ".join(f"{f.name}: {f.detail}" for f in judgement.faults)


class CopyReviewer:
    """Builds the candidates, has the judge score them, and picks the best title and the best
    description."""

    def __init__(self, banned_phrases: Sequence[str] = ()) -> None:
        self.banned_phrases = tuple(banned_phrases)
        self.judge = Judge(banned_phrases)

    @cached_property
    def fingerprint(self) -> str:
        """What the verdicts depend on besides the copy, product and channel."""
        text = "\x1f".join([CHECKS_VERSION, *self.banned_phrases])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def review(
        self,
        product: Product,
        rules: ChannelRules,
        title: str | None,
        description: str | None,
        parse_error: str | None,
        layout: Sequence[TitleSlot] | None = None,
        learned: bool = False,
    ) -> Reviewed:
        """layout: the tenant's learned title layout for this product (plugins.layouts),
        which the composed title follows; None: the default layout. learned: the copy comes
        from an adapter trained on the tenant's accepted copy (and released by the gate for
        matching it): its title (else its repair) is then taken when the judge finds no fault
        in it and scores it no lower than the merchant's own title, even where the judge's
        general preferences score a rule-made title higher."""
        facts = ProductFacts.of(product)
        parsed = parse_error is None and bool(title)
        model_title = title if parsed and title else None
        model_description = description if parsed and description else None

        titles = self._titles(facts, rules, model_title, model_description, layout)
        taken = _learned(titles) if learned else None
        best_title = taken or _best(titles)
        descriptions = self._descriptions(facts, rules, best_title.text, model_description)
        best_description = _best(descriptions)

        original_title = titles[0]
        original_description = descriptions[0]
        title_better = best_title.judgement.score > original_title.judgement.score + _MARGIN
        description_better = (
            best_description.judgement.score
            > original_description.judgement.score + _DESCRIPTION_MARGIN
        )
        improved = (title_better and _changed(best_title)) or (
            description_better and _changed(best_description)
        )
        checks = [CheckResult(name="parsed", passed=parse_error is None, detail=parse_error or "")]
        checks += [_named("title", f) for f in best_title.judgement.findings]
        checks += [_named("description", f) for f in best_description.judgement.findings]
        for choice in (*titles, *descriptions):
            if choice.source == "model":
                kind = "title" if choice in titles else "description"
                checks += [_named(f"model {kind}", f) for f in choice.judgement.faults]
        reason = _reason(titles, best_title, descriptions, best_description, model_title)
        if taken is not None:  # not when the judge's own choice happened to be the model's
            reason += "; the title as the tenant's adapter learnt to write it"
        if layout is not None and best_title.source == "composed":
            reason += f"; composed in the tenant's learned layout ({' '.join(layout)})"
        checks.append(CheckResult(name="selection", passed=improved, detail=reason))
        return Reviewed(
            title=best_title.text,
            description=best_description.text,
            checks=checks,
            fallback_used=best_title.source not in MODEL_SOURCES,
            improved=improved,
            title_source=best_title.source,
            description_source=best_description.source,
            reason=reason,
            scores={
                "title": best_title.judgement.score,
                "original_title": original_title.judgement.score,
                "description": best_description.judgement.score,
                "original_description": original_description.judgement.score,
            },
        )

    def _titles(
        self,
        facts: ProductFacts,
        rules: ChannelRules,
        model_title: str | None,
        model_description: str | None,
        layout: Sequence[TitleSlot] | None,
    ) -> list[_Choice]:
        product = facts.product
        texts = {
            "original": " ".join(product.title.split()),
            "cleaned": clean_title(product, rules.title_max),
            "composed": compose_title(product, rules.title_max, layout),
        }
        if model_title:
            repaired = self._repair_title(facts, rules, model_title, model_description or "")
            if repaired:
                texts["repaired"] = repaired
            texts["model"] = fit_title(model_title, rules.title_max)
        return [
            _Choice(source, texts[source], self.judge.title(facts, rules, texts[source]))
            for source in TITLE_SOURCES
            if texts.get(source)
        ]

    def _descriptions(
        self, facts: ProductFacts, rules: ChannelRules, title: str, model_description: str | None
    ) -> list[_Choice]:
        product = facts.product
        limit = rules.description_max
        cleaned = clean_description(product, limit)
        texts = {
            "original": " ".join(product.description.split()),
            "cleaned": cleaned,
            "template": template_description(product, title, limit, cleaned),
        }
        if model_description:
            texts["model"] = fit_description(complete_sentences(model_description), limit)
            repaired = self._repair_description(facts, rules, model_description)
            if repaired:
                texts["repaired"] = fit_description(repaired, limit)
        choices = [
            _Choice(
                source, texts[source], self.judge.description(facts, rules, texts[source], title)
            )
            for source in DESCRIPTION_SOURCES
            if source in texts
        ]
        return choices

    def _repair_title(
        self, facts: ProductFacts, rules: ChannelRules, title: str, description: str
    ) -> str | None:
        """The model's title less what the guard objects to (unsupported values, words no
        field gives, promotional or banned phrases), with the product type, brand and gender
        it left out put back."""
        phrases = [*self.banned_phrases, *rules.promotional_phrases]
        # A title names only what the product's fields give; CJK titles are left whole (their
        # new "words" are single characters).
        invented = [w for w in new_words(facts, title) if not CJK.search(w)]
        fixed = title
        for value in [*facts.grounding.unsupported(title), *invented, *phrases]:
            fixed = re.sub(rf"(?i)(?<!\w){re.escape(value)}(?!\w)", " ", fixed)
        fixed = " ".join(fixed.split()).strip(" ,;:-|&")
        if not fixed:
            return None
        fixed = _with_type(fixed, facts)
        if len(fixed.split()) < 2:
            return None
        completed, _ = complete_title(facts.product, fixed, description)
        completed = fit_title(completed, rules.title_max)
        return completed if completed != fit_title(title, rules.title_max) else None

    def _repair_description(
        self, facts: ProductFacts, rules: ChannelRules, description: str
    ) -> str | None:
        """The model's description less the sentences holding unsupported values or banned
        phrases, and less an unfinished last sentence."""
        phrases = [*self.banned_phrases, *rules.promotional_phrases]
        sentences = [s for s in _SENTENCE.split(complete_sentences(description)) if s.strip()]
        kept = [
            s
            for s in sentences
            if not facts.grounding.unsupported(s) and not any(has_phrase(s, p) for p in phrases)
        ]
        if not kept or len(kept) == len(sentences):
            return None
        return " ".join(kept)


def _with_type(title: str, facts: ProductFacts) -> str:
    """The title with the product type put back where it is missing: first where the
    merchant's title starts with it, else last, sharing the words the title already ends with
    ("Slim Fit" + "Fit Shirt" -> "Slim Fit Shirt"); capitalised as the title's words are."""
    phrase = facts.type_phrase
    if phrase is None or CJK.search(phrase) or holds_type(title, phrase):
        return title
    kind = phrase.split()
    latin = [w for w in words(title) if w[:1].isalpha()]
    if latin and sum(w[:1].isupper() for w in latin) * 2 > len(latin):
        kind = [w[:1].upper() + w[1:] if w.islower() else w for w in kind]
    if [norm(w) for w in words(facts.product.title)[: len(kind)]] == [norm(w) for w in kind]:
        return " ".join([*kind, title])
    have = title.split()

    def ends_with(n: int) -> bool:
        return [norm(w) for w in have[len(have) - n :]] == [norm(w) for w in kind[:n]]

    shared = max(n for n in range(len(kind) + 1) if n == 0 or ends_with(n))
    return " ".join([*have, *kind[shared:]])


def _named(prefix: str, finding: CheckResult) -> CheckResult:
    return finding.model_copy(update={"name": f"{prefix}:{finding.name}"})


def _changed(choice: _Choice) -> bool:
    finding = choice.judgement.finding("changed")
    return choice.source != "original" and finding is not None and finding.passed


def _reason(
    titles: Sequence[_Choice],
    best_title: _Choice,
    descriptions: Sequence[_Choice],
    best_description: _Choice,
    model_title: str | None,
) -> str:
    """Which candidates won and why, in a line a merchant or operator can read."""
    original = titles[0].judgement.score
    parts = [
        f"title: {best_title.source} ({best_title.judgement.score:.2f} vs original {original:.2f})"
    ]
    parts.append(
        f"description: {best_description.source} ({best_description.judgement.score:.2f} vs "
        f"original {descriptions[0].judgement.score:.2f})"
    )
    model = next((c for c in titles if c.source == "model"), None)
    if model_title is None:
        parts.append("model: no usable answer")
    elif model is not None and model is not best_title and model.judgement.faults:
        parts.append(f"model title: {_faults(model.judgement)}")
    return "; ".join(parts)
