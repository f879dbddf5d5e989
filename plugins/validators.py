"""Checks on generated copy, one repair attempt, and the fallback decision.

Every check returns a CheckResult that goes into the suggestion, so a merchant (and the
evaluation) can see what ran and what it found. The hallucination guard is strict on purpose:
a value in the copy (a number with its unit, a color, a material, a size, a known brand) must
be found in the product's own fields, or the copy is repaired or replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from copyflow.plugins.fallback import split_injected
from copyflow.plugins.lexicon import (
    BRANDS,
    COLORS,
    GENDER_PREFIX,
    GENDER_WORDS,
    INJECTION,
    MATERIALS,
    STOPWORDS,
    UNIT_FORMS,
    UNITS,
)
from copyflow.plugins.text import source_text
from copyflow.schemas import CheckResult, Product

# A number ("9/16", "2-10", "5.3"), optionally its unit ("26 cm", "3-pack", "65W"); it may be
# followed by CJK text ("5000毫安") but not by more Latin letters or digits ("4K" is a code).
_NUMBER = re.compile(
    rf"(?<![\w.])(\d+(?:[./-]\d+)*)(?:[\s-]?({UNITS})(?![A-Za-z]))?(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_DIMENSIONS = re.compile(r"(\d)\s*[x\u00d7]\s*(?=\d)", re.IGNORECASE)
_DECIMAL_COMMA = re.compile(r"(?<![\d,])(\d+),(\d{1,2})(?![\d,])")  # not in "8,10,12"
_THOUSANDS = re.compile(r"(\d),(\d{3})(?!\d)")
_WORD = re.compile(r"[\w'&]+", re.UNICODE)
_SIZE = re.compile(r"\b(?:size\s+([SML])|(XXS|XS|XL|XXL|XXXL|[2-4]XL))\b")
# Sentences run together by an export that dropped the separator ("... TSA lockOne handle").
RUN_TOGETHER = re.compile(r"(?<=[a-z]{3})(?=[A-Z][a-z])")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
# The prompt's scaffolding, as the prompt writes it (case matters: "Language: German" in a
# book's copy is not an echo).
_ECHO = ("Product data:", "```", "TITLE:", "DESCRIPTION:")


def _norm(word: str) -> str:
    """Lower case, without a possessive or quote ("Pirate's" -> "pirate")."""
    return word.lower().removesuffix("'s").strip("'")


def _injected_words(source: str) -> frozenset[str]:
    """Words that only the instruction-like part of a product field gives."""
    clean: set[str] = set()
    payload: set[str] = set()
    for field in source.split("\n\x1e"):
        kept, injected = split_injected(field)
        clean |= {_norm(w) for s in kept for w in _WORD.findall(s)}
        payload |= {_norm(w) for s in injected for w in _WORD.findall(s)}
    return frozenset(payload - clean - STOPWORDS["en"])


def _value(number: str) -> str:
    """A number as a comparable value: "2.50" and "2.5" are the same."""
    return re.sub(r"(\.\d*?)0+$", r"\1", number).removesuffix(".")


def numbers_in(text: str) -> list[tuple[str, str, str]]:
    """(matched text, number, canonical unit or '') for each number; "40x60" is two numbers,
    "1,000" is 1000 and "1,5" is 1.5."""
    text = _DIMENSIONS.sub(r"\1 ", text)
    text = _THOUSANDS.sub(r"\1\2", _DECIMAL_COMMA.sub(r"\1.\2", text))
    return [
        (m.group(0), _value(m.group(1)), UNIT_FORMS.get((m.group(2) or "").lower(), ""))
        for m in _NUMBER.finditer(text)
    ]


@dataclass(frozen=True)
class Grounding:
    """What the product's own fields support."""

    words: frozenset[str]
    numbers: frozenset[str]
    parts: frozenset[str]
    units: dict[str, frozenset[str]]
    injected: frozenset[str]

    @classmethod
    def of(cls, product: Product) -> Grounding:
        # A separator no product text holds, so the injection check can see field boundaries.
        source = source_text(product, "\n\x1e")
        found = numbers_in(source)
        units: dict[str, set[str]] = {}
        for _, number, unit in found:
            units.setdefault(number, set()).add(unit)
        return cls(
            # Words run together by an export ("shadeAluminium") count apart too.
            words=frozenset(
                _norm(w) for w in _WORD.findall(f"{source} {RUN_TOGETHER.sub(' ', source)}")
            ),
            numbers=frozenset(number for _, number, _ in found),
            parts=frozenset(p for _, n, _ in found for p in re.split(r"[-/]", n)),
            units={number: frozenset(us) for number, us in units.items()},
            injected=_injected_words(source),
        )

    def _supports_number(self, number: str, unit: str) -> bool:
        """ "1-9/16" needs that whole number in the source; a plain "10" may be part of one
        ("2-10kg"). A unit must be one the source gives that number (26cm is not 26mm)."""
        if number not in self.numbers:
            return not re.search(r"[-/]", number) and number in self.parts
        return not unit or unit in self.units[number]

    def unsupported(self, text: str) -> list[str]:
        """The values in text that the product's fields do not support, in order (and any
        instruction-like phrase, or a word only an instruction in the product text gave)."""
        found: list[str] = []
        for matched, number, unit in numbers_in(text):
            if not self._supports_number(number, unit):
                found.append(matched.strip())
        found += [m.group(0) for m in INJECTION.finditer(text)]
        for word in _WORD.findall(text):
            lower = _norm(word)
            if lower in self.injected:
                found.append(word)
                continue
            if lower in self.words:
                continue
            if lower in COLORS or lower in MATERIALS or lower in BRANDS:
                found.append(word)
        for match in _SIZE.finditer(text):
            size = (match.group(1) or match.group(2)).lower()
            if size not in self.words:
                found.append(match.group(0))
        return list(dict.fromkeys(found))


def check_not_degenerate(text: str, *, n: int = 3, max_repeat_ratio: float = 0.2) -> CheckResult:
    """Fails on empty text, text whose word n-grams repeat (a looping small model), or text
    that echoes the prompt's scaffolding."""
    words = text.lower().split()
    if not words:
        return CheckResult(name="not_degenerate", passed=False, detail="empty")
    echoed = [marker for marker in _ECHO if marker in text]
    if echoed:
        return CheckResult(name="not_degenerate", passed=False, detail=f"echoes {echoed[0]!r}")
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return CheckResult(name="not_degenerate", passed=True)
    repeated = 1 - len(set(grams)) / len(grams)
    passed = repeated <= max_repeat_ratio
    detail = "" if passed else f"{repeated:.0%} of {n}-word sequences repeat"
    return CheckResult(name="not_degenerate", passed=passed, detail=detail)


def check_language(text: str, locale: str) -> CheckResult:
    """The copy is in the product's language: CJK script for zh/ja/ko, and for languages with
    a stopword list, more of that language's function words than English ones."""
    language = locale.split("-")[0].lower()
    if language in ("zh", "ja", "ko"):
        # Latin brand and model names ("Xiaomi Redmi Note 13") are normal in such copy.
        letters = [c for c in text if c.isalpha()]
        share = len(_CJK.findall(text)) / max(1, len(letters))
        passed = share >= 0.2
        detail = "" if passed else f"{share:.0%} of letters in {language} script"
        return CheckResult(name="language", passed=passed, detail=detail)
    if language == "en" or language not in STOPWORDS:
        detail = "" if language == "en" else f"not checked for {language}"
        if _CJK.search(text) and language == "en":
            return CheckResult(name="language", passed=False, detail="CJK text for locale en")
        return CheckResult(name="language", passed=True, detail=detail)
    words = [w.lower() for w in _WORD.findall(text)]
    own = sum(w in STOPWORDS[language] for w in words)
    english = sum(w in STOPWORDS["en"] for w in words)
    passed = own >= english or english < 2
    detail = "" if passed else f"reads as English ({english} English vs {own} {language} words)"
    return CheckResult(name="language", passed=passed, detail=detail)


def covers(text: str, name: str, value: str) -> bool:
    """Does the copy mention the attribute? Gender by its usual words; a color or product type
    by any of its words ("Navy Blue" -> navy or blue); a brand by its whole name."""
    words = set(re.findall(r"[\w']+", text.lower()))
    lowered = value.lower()
    if name == "gender":
        return any(w in words for w in GENDER_WORDS.get(lowered, (lowered,)))
    if name == "brand":
        return lowered in text.lower()
    return any(part in words for part in re.findall(r"\w+", lowered))


def complete_title(product: Product, title: str, description: str) -> tuple[str, CheckResult]:
    """The title with the product's brand and (in English copy) gender in front when the copy
    names neither: shoppers filter by both, and a small model often drops them."""
    text = f"{title}\n{description}"
    brand = product.brand if product.brand and not covers(text, "brand", product.brand) else ""
    gender = next((v for k, v in product.attributes.items() if k.lower() == "gender"), "")
    english = product.locale.split("-")[0].lower() == "en"
    prefix = GENDER_PREFIX.get(gender.lower(), gender) if gender and english else ""
    if prefix and covers(text, "gender", gender):
        prefix = ""
    added = [f"{name} {value!r}" for name, value in (("brand", brand), ("gender", prefix)) if value]
    if not added:
        return title, CheckResult(name="coverage", passed=True)
    lead = product.brand and re.match(rf"(?i){re.escape(product.brand)}(?!\w)", title)
    if not brand and lead:
        # "Roadster Slim Jeans" -> "Roadster Men's Slim Jeans": the brand stays first.
        completed = f"{lead.group(0)} {prefix}{title[lead.end() :]}"
    else:
        completed = " ".join(p for p in (brand, prefix, title) if p)
    detail = "added to the title: " + ", ".join(added)
    return completed, CheckResult(name="coverage", passed=True, detail=detail)
