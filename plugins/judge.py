"""The quality judge: what a merchant would check before accepting a title or description.

Independent of how copy was made (model, repair, composition, the merchant's own): it takes a
product, a channel and a text and returns findings and a score. Findings are CheckResults, so
a suggestion shows which held. A finding that fails as a *fault* (the product type dropped, a
word no field gives, a broken character...) costs a whole point, more than any quality gain
can make up, so a faulty candidate never beats a faultless one.

Title findings:
- type_kept, numbers_kept, codes_kept, brand_kept: what the original title says stays said;
- new_words: every content word is found in the product's own fields (catches "Mug" for a
  lipstick); unsupported values (numbers, colors, materials, sizes, brands) count too;
- coverage: the key attributes (brand, type, color, gender, size) the title names;
- well_formed, language, not_degenerate, style, length.
Description findings: complete (ends a sentence), grounded (values and product-type nouns),
coverage, well_formed, language, not_degenerate, style, length.
Both: changed (differs from the original after normalization; not a fault).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from copyflow.plugins.channels import ChannelRules
from copyflow.plugins.channels.base import has_phrase
from copyflow.plugins.lexicon import GENDER_WORDS, PRODUCT_NOUNS
from copyflow.plugins.text import (
    CJK,
    SENTENCE_END,
    attribute,
    holds_type,
    is_cjk_locale,
    is_content_word,
    norm,
    product_type,
    source_text,
    squash,
    title_case_share,
    word_forms,
    words,
)
from copyflow.plugins.validators import Grounding, check_language, check_not_degenerate, numbers_in
from copyflow.schemas import CheckResult, Product

FAULT = 1.0
_PRODUCT_NOUNS = frozenset(norm(w) for w in PRODUCT_NOUNS)
# Control characters other than ordinary white space, and the replacement character a cut
# multibyte sequence decodes to.
_BROKEN = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The same run of two or more characters three times in a row: a loop, also in CJK text
# ("生啤酒生啤酒生啤酒") and in numbers ("5050 5050 5050").
_CHAR_LOOP = re.compile(r"(\S.+?)(?:\s*\1){2,}")
# A model code: letters and digits mixed ("H1000", "WX-200B"); pure numbers are values.
_CODE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9][A-Za-z0-9\-/.]*$")


@dataclass(frozen=True)
class Judgement:
    """Findings on one text and its score (higher is better; faults cost FAULT each)."""

    score: float
    findings: list[CheckResult] = field(default_factory=list)

    @property
    def faults(self) -> list[CheckResult]:
        return [f for f in self.findings if not f.passed and f.name in _FAULTS]

    @property
    def ok(self) -> bool:
        return not self.faults

    def finding(self, name: str) -> CheckResult | None:
        return next((f for f in self.findings if f.name == name), None)


_FAULTS = frozenset(
    {
        "empty",
        "type_kept",
        "numbers_kept",
        "codes_kept",
        "brand_kept",
        "new_words",
        "grounded",
        "complete",
        "well_formed",
        "language",
        "not_degenerate",
        "style",
        "length",
    }
)


def _result(name: str, problems: Sequence[str], ok_detail: str = "") -> CheckResult:
    return CheckResult(name=name, passed=not problems, detail="; ".join(problems) or ok_detail)


def normalized(text: str) -> str:
    """For "changed": NFKC, single spaces, no trailing punctuation. Case is kept: a title
    moved out of lower case is a change a merchant sees."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).strip(" .,;:-|")


def well_formed(text: str) -> CheckResult:
    broken = sorted({f"U+{ord(c):04X}" for c in _BROKEN.findall(text)})
    return _result(
        "well_formed", [f"broken or control characters: {', '.join(broken)}"] if broken else []
    )


def loops(text: str) -> CheckResult:
    """Word n-gram repeats (the older check) and character-run repeats, which also find
    loops in text without spaces."""
    words_check = check_not_degenerate(text)
    if not words_check.passed:
        return words_check
    match = _CHAR_LOOP.search(text)
    if match and any(c.isalnum() for c in match.group(1)) and len(match.group(0)) >= 6:
        return CheckResult(
            name="not_degenerate", passed=False, detail=f"repeats {match.group(1).strip()!r}"
        )
    return CheckResult(name="not_degenerate", passed=True)


def script(text: str, locale: str) -> CheckResult:
    """The locale's script and language: CJK for zh/ja/ko, no CJK otherwise, and function
    words of the locale's language rather than English ones where we know them."""
    result = check_language(text, locale)
    if result.passed and not is_cjk_locale(locale) and CJK.search(text):
        return CheckResult(name="language", passed=False, detail=f"CJK text for locale {locale}")
    if result.passed and is_cjk_locale(locale):
        # Latin brand names are normal in CJK copy, whole English sentences are not.
        english = [
            w
            for w in words(text)
            if w.lower() in {"the", "and", "with", "for", "this", "is", "a", "of"}
        ]
        if len(english) >= 2:
            return CheckResult(
                name="language",
                passed=False,
                detail=f"English words in {locale} copy: {', '.join(english[:4])}",
            )
    return result


@dataclass(frozen=True)
class ProductFacts:
    """What the judge needs to know of a product, computed once per product."""

    product: Product
    grounding: Grounding
    forms: frozenset[str]
    type_phrase: str | None
    title_numbers: tuple[tuple[str, str], ...]
    title_codes: tuple[str, ...]
    brand: str | None
    keys: dict[str, str]

    @classmethod
    def of(cls, product: Product) -> ProductFacts:
        type_phrase = product_type(product)
        brand = product.brand if product.brand and product.brand.strip() else None
        keys: dict[str, str] = {}
        if brand:
            keys["brand"] = brand
        if type_phrase:
            keys["type"] = type_phrase
        for key, names in (
            ("color", ("color", "colour")),
            ("gender", ("gender",)),
            ("size", ("size",)),
        ):
            value = attribute(product, *names)
            if value:
                keys[key] = value
        return cls(
            product=product,
            grounding=Grounding.of(product),
            forms=frozenset(word_forms(source_text(product))),
            type_phrase=type_phrase,
            title_numbers=tuple(dict.fromkeys((n, u) for _, n, u in numbers_in(product.title))),
            title_codes=tuple(dict.fromkeys(w for w in words(product.title) if _CODE.match(w))),
            brand=brand,
            keys=keys,
        )


def mentions(text: str, key: str, value: str) -> bool:
    """Does the text name this key attribute? Gender by its usual words, a brand by its whole
    name (spacing aside), the type by its head word, others by any of their words."""
    if key == "brand":
        return squash(value) in squash(text)
    if key == "type":
        return holds_type(text, value)
    if CJK.search(value):
        return value in text
    forms = word_forms(text)
    if key == "gender":
        return any(norm(g) in forms for g in GENDER_WORDS.get(value.lower(), (value,)))
    return any(norm(w) in forms for w in words(value))


def _coverage(facts: ProductFacts, text: str) -> tuple[float, CheckResult]:
    if not facts.keys:
        return 1.0, CheckResult(name="coverage", passed=True, detail="no key attributes given")
    named = [k for k, v in facts.keys.items() if mentions(text, k, v)]
    missing = [k for k in facts.keys if k not in named]
    share = len(named) / len(facts.keys)
    detail = f"{len(named)}/{len(facts.keys)}" + (
        f"; missing {', '.join(missing)}" if missing else ""
    )
    return share, CheckResult(name="coverage", passed=not missing, detail=detail)


def new_words(facts: ProductFacts, text: str) -> list[str]:
    """Content words that no field of the product gives (CJK: characters)."""
    new = []
    for word in words(text):
        if CJK.search(word):
            new += [c for c in CJK.findall(word) if c not in facts.forms]
            continue
        if not is_content_word(word):
            continue
        parts = [p for p in re.split(r"[-'.\u2019]", word) if p]
        if norm(word) in facts.forms or norm("".join(parts)) in facts.forms:
            continue
        if all(norm(p) in facts.forms or not is_content_word(p) for p in parts):
            continue
        new.append(word)
    return list(dict.fromkeys(new))


class Judge:
    """Scores titles and descriptions of one product for one channel."""

    def __init__(self, banned_phrases: Sequence[str] = ()) -> None:
        self.banned_phrases = tuple(banned_phrases)

    def _style(self, text: str, rules: ChannelRules) -> CheckResult:
        phrases = [*self.banned_phrases, *rules.promotional_phrases]
        found = [p for p in phrases if has_phrase(text, p)]
        return _result("style", [f"promotional or banned phrase {p!r}" for p in found])

    def _shared(
        self, facts: ProductFacts, rules: ChannelRules, text: str, limit: int, original: str
    ) -> tuple[float, list[CheckResult]]:
        """The findings titles and descriptions share, and the coverage share."""
        coverage, coverage_finding = _coverage(facts, text)
        over = [f"{len(text)} chars, over {limit}"] if len(text) > limit else []
        return coverage, [
            coverage_finding,
            well_formed(text),
            script(text, facts.product.locale),
            loops(text),
            self._style(text, rules),
            _result("length", over),
            _changed(text, original),
        ]

    def title(self, facts: ProductFacts, rules: ChannelRules, title: str) -> Judgement:
        product = facts.product
        text = " ".join(title.split())
        if not text:
            return Judgement(
                -FAULT * 3, [CheckResult(name="empty", passed=False, detail="no title")]
            )
        findings: list[CheckResult] = []
        type_ok = facts.type_phrase is None or holds_type(text, facts.type_phrase)
        findings.append(
            _result(
                "type_kept",
                [] if type_ok else [f"drops the product type {facts.type_phrase!r}"],
                facts.type_phrase or "no product type found in the original",
            )
        )
        numbers = {(n, u) for _, n, u in numbers_in(text)}
        values = {n for n, _ in numbers}
        dropped = [
            n + (u and f" {u}")
            for n, u in facts.title_numbers
            if (n, u) not in numbers and not (u == "" and n in values)
        ]
        findings.append(_result("numbers_kept", [f"drops {', '.join(dropped)}"] if dropped else []))
        text_squashed = {squash(w) for w in words(text)}
        lost_codes = [
            c
            for c in facts.title_codes
            if squash(c) not in text_squashed and squash(c) not in squash(text)
        ]
        findings.append(
            _result("codes_kept", [f"drops {', '.join(lost_codes)}"] if lost_codes else [])
        )
        brand_in_original = facts.brand and squash(facts.brand) in squash(product.title)
        brand_lost = brand_in_original and not mentions(text, "brand", facts.brand or "")
        findings.append(
            _result("brand_kept", [f"drops the brand {facts.brand!r}"] if brand_lost else [])
        )
        new = new_words(facts, text)
        unsupported = facts.grounding.unsupported(text)
        problems = []
        if new:
            problems.append("not in the product's fields: " + ", ".join(new))
        if unsupported:
            problems.append("unsupported values: " + ", ".join(unsupported))
        findings.append(_result("new_words", problems))
        coverage, shared = self._shared(facts, rules, text, rules.title_max, product.title)
        findings += shared
        faults = sum(not f.passed and f.name in _FAULTS for f in findings)
        score = (
            0.45 * coverage
            + 0.25 * _title_style(text, product)
            + 0.15 * _recall(product.title, text)
            + 0.15 * _title_length(text, rules)
        )
        return Judgement(round(score - FAULT * faults, 4), findings)

    def description(
        self, facts: ProductFacts, rules: ChannelRules, description: str, title: str = ""
    ) -> Judgement:
        product = facts.product
        text = " ".join(description.split())
        if not text:
            return Judgement(
                -FAULT * 3, [CheckResult(name="empty", passed=False, detail="no description")]
            )
        findings: list[CheckResult] = []
        complete = SENTENCE_END.search(text) is not None
        findings.append(
            _result("complete", [] if complete else ["ends mid-sentence: ..." + text[-30:]])
        )
        unsupported = facts.grounding.unsupported(text)
        nouns = [w for w in words(text) if norm(w) in _PRODUCT_NOUNS and norm(w) not in facts.forms]
        problems = []
        if unsupported:
            problems.append("unsupported values: " + ", ".join(unsupported))
        if nouns:
            problems.append(
                "product types not in the product's fields: " + ", ".join(dict.fromkeys(nouns))
            )
        findings.append(_result("grounded", problems))
        coverage, shared = self._shared(
            facts, rules, text, rules.description_max, product.description
        )
        findings += shared
        faults = sum(not f.passed and f.name in _FAULTS for f in findings)
        sentences = len(re.findall(r"[.!?\u3002\uff01\uff1f](?:\s|$)", text))
        # A description earns its place by saying more than the title, in whole sentences,
        # and by keeping what the merchant's own description said.
        informative = (
            0.0 if normalized(text).lower().rstrip(".") == normalized(title).lower() else 1.0
        )
        fullness = min(1.0, len(text) / (100 if is_cjk_locale(product.locale) else 250))
        recall = _recall(product.description, text)
        score = (
            0.3 * fullness
            + 0.25 * recall
            + 0.2 * coverage
            + 0.1 * min(1.0, sentences / 2)
            + 0.15 * informative
        )
        return Judgement(round(score - FAULT * faults, 4), findings)


def _changed(text: str, original: str) -> CheckResult:
    changed = normalized(text) != normalized(original)
    return CheckResult(
        name="changed", passed=changed, detail="" if changed else "same as the original"
    )


def _title_style(text: str, product: Product) -> float:
    """Capitalised words, no shouting, no word said twice, the brand first when it is named."""
    if CJK.search(text):
        casing = 1.0
    else:
        casing = title_case_share(text)
        shouting = [w for w in words(text) if len(w) >= 4 and w.isupper() and w.isalpha()]
        casing -= min(0.5, 0.25 * len(shouting))
    forms = [norm(w) for w in words(text) if is_content_word(w)]
    repeats = len(forms) - len(set(forms))
    brand_first = 1.0
    if product.brand and squash(product.brand) in squash(text):
        brand_first = 1.0 if squash(text).startswith(squash(product.brand)) else 0.5
    return max(0.0, 0.5 * casing + 0.3 * (1.0 if repeats == 0 else 0.0) + 0.2 * brand_first)


def _recall(original_text: str, text: str) -> float:
    """Share of the original text's content words (CJK: characters) the text keeps."""
    original = {norm(w) for w in words(original_text) if is_content_word(w) and not CJK.search(w)}
    original |= set(CJK.findall(original_text))
    if not original:
        return 1.0
    kept = word_forms(text)
    return len(original & kept) / len(original)


def _title_length(text: str, rules: ChannelRules) -> float:
    """Titles of a few words up to the channel's limit read best; a bare one or two words
    say too little."""
    count = len(words(text)) if not CJK.search(text) else len(text) // 2
    return min(1.0, count / 4)
