"""Candidate copy built from the product's own fields, beside the model's: the cleaned
original, a composed title, the cleaned original description and a template description in
the product's language. Each only rearranges or restates what the product's fields say.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from copyflow.plugins.fallback import split_injected
from copyflow.plugins.judge import mentions
from copyflow.plugins.lexicon import ACRONYMS, GENDER_PREFIX, GENDER_WORDS, SMALL_WORDS, UNITS
from copyflow.plugins.text import (
    CJK,
    attribute,
    complete_sentences,
    is_cjk_locale,
    is_content_word,
    language,
    norm,
    product_type,
    squash,
    words,
)
from copyflow.plugins.validators import RUN_TOGETHER
from copyflow.schemas import Product, TitleSlot

# How a unit is written after a number: the SI symbols' own case.
_UNIT_CASE = {
    "w": "W", "kw": "kW", "v": "V", "mah": "mAh", "gb": "GB", "tb": "TB", "mb": "MB",
    "hz": "Hz", "mhz": "MHz", "ghz": "GHz", "l": "L",
}  # fmt: skip
_NUMBER_UNIT = re.compile(
    rf"(?<![\w.])(\d+(?:[.,/-]\d+)*)(\s?)({UNITS})(?![A-Za-z])", re.IGNORECASE
)
_BROKEN = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_QUALIFIERS = re.compile(r"\s*(?:,|;|\s[-\u2013|]\s|\s(?=with\s|for\s|featuring\s))", re.IGNORECASE)


def _plain(text: str) -> str:
    """NFKC, no broken or control characters, single spaces, tidy punctuation spacing."""
    text = _BROKEN.sub("", unicodedata.normalize("NFKC", text))
    text = " ".join(text.split())
    text = re.sub(r"\s+([,;:!?.])(?=\s|$)", r"\1", text)
    return re.sub(r"([,;])(?=[^\s\d])", r"\1 ", text)


def _case(word: str, first: bool) -> str:
    lowered = word.lower()
    if lowered in ACRONYMS:
        return word.upper()
    if any(c.isdigit() for c in word):
        return word  # codes and numbers keep their spelling
    if lowered in SMALL_WORDS and not first:
        return lowered
    return "-".join(p[:1].upper() + p[1:].lower() for p in word.split("-"))


def _recase(
    title: str, keep: frozenset[str] = frozenset(), spelled: dict[str, str] | None = None
) -> str:
    """A title in lower case or shouted in capitals gets title case; a mixed one keeps the
    merchant's casing, except shouted words (four or more capitals). Words in keep (the
    brand's) keep their spelling."""
    if CJK.search(title):
        return title
    latin = [w for w in words(title) if w[0].isalpha()]
    if not latin:
        return title
    lower = sum(w.islower() for w in latin) / len(latin)
    upper = sum(w.isupper() and len(w) > 1 for w in latin) / len(latin)
    position = 0

    def fix(match: re.Match[str]) -> str:
        nonlocal position
        word = match.group(0)
        first = position == 0
        position += 1
        if word in keep:
            return word
        if spelled and word.islower() and word in spelled:
            return spelled[word]  # as another field spells it ("usb-c" -> "USB-C")
        if word.islower() and len(word) <= 3 and not re.search(r"[aeiouy\d]", word):
            return word.upper()  # "bt", "tkl": an abbreviation, not a word
        if lower > 0.6 and word.islower():
            return _case(word, first)
        if upper > 0.6 and word.isupper():
            return _case(word, first)
        if len(word) >= 4 and word.isupper() and word.isalpha() and word.lower() not in ACRONYMS:
            return _case(word, first)
        return word

    return re.sub(r"[^\W\d_][\w\-']*|\d[\w\-']*", fix, title)


def _units(text: str) -> str:
    def unit(match: re.Match[str]) -> str:
        value, space, symbol = match.groups()
        lowered = symbol.lower()
        shown = lowered if len(symbol) > 1 or symbol.isalpha() else symbol
        return f"{value}{space}{_UNIT_CASE.get(lowered, shown)}"

    return _NUMBER_UNIT.sub(unit, text)


def _once(title: str, brand: str | None) -> str:
    """No word twice in a row, and the brand once (also when spelled with other spacing:
    "Pro Tec Protec DynaFilter" -> "Pro Tec DynaFilter")."""
    tokens = title.split(" ")
    kept: list[str] = []
    for token in tokens:
        if kept and squash(token) and squash(token) == squash(kept[-1]):
            continue
        kept.append(token)
    title = " ".join(kept)
    if brand and squash(brand):
        target = squash(brand)
        tokens = title.split(" ")
        seen = False
        out: list[str] = []
        i = 0
        while i < len(tokens):
            matched = 0
            for span in range(1, min(4, len(tokens) - i) + 1):
                if squash(" ".join(tokens[i : i + span])) == target:
                    matched = span
                    break
            if matched:
                if not seen:
                    out += tokens[i : i + matched]
                seen = True
                i += matched
                continue
            out.append(tokens[i])
            i += 1
        title = " ".join(out)
    return title


def fit_title(title: str, limit: int) -> str:
    """Within the limit: drop trailing qualifiers first ("..., Chrome", "... with Jacket"),
    so the head of the title (brand, name, product type) stays whole; then cut at a word."""
    title = " ".join(title.split())
    while len(title) > limit:
        cuts = [m.start() for m in _QUALIFIERS.finditer(title) if m.start() > 0]
        if not cuts:
            break
        title = title[: cuts[-1]].rstrip(" ,;-|")
    if len(title) <= limit:
        return title
    cut = title[: limit + 1].rsplit(" ", 1)[0] if " " in title[: limit + 1] else title[:limit]
    return cut.rstrip(" ,;:-/|&")


def fit_description(text: str, limit: int) -> str:
    """Within the limit, ending with a whole sentence ("" when even the first is too long)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return complete_sentences(text[:limit])


def clean_title(product: Product, limit: int) -> str:
    """The merchant's own title, tidied: spacing, casing, units, repeated words, the brand
    once, broken characters out, within the channel's limit."""
    title = _plain(product.title)
    brand = (
        frozenset(words(product.brand or ""))
        if product.brand and not product.brand.islower()
        else frozenset()
    )
    fields = " ".join([*product.attributes.values(), product.description, *product.keywords])
    spelled = {w.lower(): w for w in words(fields) if not w.islower() and not w.istitle()}
    title = _once(_units(_recase(title, brand, spelled)), product.brand)
    return fit_title(title, limit)


def _insert_before_type(title: str, addition: str, type_phrase: str | None) -> str:
    """Put an attribute just before the product type when the title's head ends with it
    ("Check Shirt" -> "Check Navy Shirt"), else in front of the title."""
    cut = _QUALIFIERS.search(title)
    head = title[: cut.start()] if cut else title
    if type_phrase and head.lower().rstrip().endswith(type_phrase.lower()):
        index = head.lower().rfind(type_phrase.lower())
        return f"{title[:index]}{addition} {title[index:]}"
    return f"{addition} {title}"


# The parts of a title, in the order a composed title lays them out unless the tenant's
# accepted titles show another: brand, the rest of the name, gender, color, product type, and
# what follows the type from its first number on ("Skillet 26cm Pre-Seasoned").
SLOTS: tuple[TitleSlot, ...] = get_args(TitleSlot)
DEFAULT_LAYOUT = SLOTS
# A title whose product type cannot be found keeps the merchant's order, attributes first.
_TYPELESS_LAYOUT: tuple[TitleSlot, ...] = ("brand", "gender", "color", "name", "type", "specs")

_Run = list[tuple[int, str]]  # tokens with their place in the title


def _take(tokens: _Run, wanted: str) -> tuple[int, _Run]:
    """Remove the first run of tokens that spells wanted (spacing, case and punctuation
    aside) from tokens; return where it stood in tokens and the run ([] when there is none)."""
    target = squash(wanted)
    if target:
        for start in range(len(tokens)):
            for end in range(start + 1, min(start + 6, len(tokens)) + 1):
                if squash(" ".join(t for _, t in tokens[start:end])) == target:
                    run = tokens[start:end]
                    del tokens[start:end]
                    return start, run
    return len(tokens), []


@dataclass(frozen=True)
class TitleParts:
    """A Latin-script title cut into SLOTS. found: the parts the title holds, each with its
    tokens' places; added: the key attributes it lacks, from the product's fields; tail: the
    trailing qualifiers (", Chrome", " with Jacket"), which stay last."""

    found: dict[TitleSlot, _Run]
    added: dict[TitleSlot, list[str]]
    tail: str

    def order(self) -> tuple[TitleSlot, ...]:
        """The slots the title holds, in the order it holds them."""
        return tuple(sorted(self.found, key=lambda slot: self.found[slot][0][0]))


def title_parts(product: Product, title: str) -> TitleParts:
    """Cut a title (the product's, or one a merchant accepted for it) into its parts."""
    english = language(product.locale) == "en"
    cut = _QUALIFIERS.search(title)
    head, tail = (title[: cut.start()], title[cut.start() :]) if cut else (title, "")
    tokens: _Run = list(enumerate(head.split()))
    found: dict[TitleSlot, _Run] = {}
    added: dict[TitleSlot, list[str]] = {}
    brand = product.brand.strip() if product.brand else ""
    if brand:
        found["brand"] = _take(tokens, brand)[1]
        if not found["brand"]:
            added["brand"] = [brand]
    type_phrase = product_type(product)
    type_at, found["type"] = _take(tokens, type_phrase) if type_phrase else (len(tokens), [])
    # What follows the type from its first number or compound on stays after it
    # ("Skillet 26cm Pre-Seasoned"); loose words after it move in front of it.
    split = next(
        (i for i in range(type_at, len(tokens)) if re.search(r"[\d-]", tokens[i][1])), None
    )
    if split is not None and split > type_at and tokens[split - 1][1].isalpha():
        split -= 1  # a number keeps the word that names it ("SPF 30", "Bluetooth 5.3")
    if found["type"] and split is not None:
        found["specs"], tokens = tokens[split:], tokens[:split]
    color = attribute(product, "color", "colour")
    if color:
        found["color"] = _take(tokens, color)[1]
    gender = attribute(product, "gender")
    if gender:
        forms = {norm(g) for g in GENDER_WORDS.get(gender.lower(), (gender,))}
        at = next((i for i, (_, t) in enumerate(tokens) if norm(t) in forms), None)
        found["gender"] = [tokens.pop(at)] if at is not None else []
    found["name"] = tokens
    rest = " ".join(t for _, t in tokens)
    if color and not found["color"] and not mentions(f"{rest} {tail}", "color", color):
        added["color"] = [color if not color.islower() else _recase(color)]
    said = mentions(f"{rest} {tail}", "gender", gender) if gender else True
    if gender and not found["gender"] and english and not said:
        added["gender"] = [GENDER_PREFIX.get(gender.lower(), gender.title())]
    return TitleParts({slot: run for slot, run in found.items() if run}, added, tail)


def compose_title(product: Product, limit: int, layout: Sequence[TitleSlot] | None = None) -> str:
    """The cleaned title laid out as shoppers scan a title, with the key attributes it does
    not name put in, then the title's qualifiers and the size. layout: the order of SLOTS
    (learned from the tenant's accepted titles), else DEFAULT_LAYOUT; a title whose product
    type cannot be found keeps its order. Nothing the fields do not say."""
    title = clean_title(product, 10_000)
    if is_cjk_locale(product.locale) or CJK.search(title):
        return _compose_in_place(product, title, limit)
    parts = title_parts(product, title)
    if "type" not in parts.found:
        layout = _TYPELESS_LAYOUT
    texts = {slot: [t for _, t in run] for slot, run in parts.found.items()} | parts.added
    ordered = [*(layout or DEFAULT_LAYOUT), *SLOTS]
    pieces = [" ".join(texts.pop(slot)) for slot in ordered if slot in texts]
    title = " ".join(p for p in pieces if p) + parts.tail
    return fit_title(_with_size(product, title, language(product.locale) == "en"), limit)


def _with_size(product: Product, title: str, english: bool) -> str:
    size = attribute(product, "size")
    if not size:
        return title
    title_numbers = set(re.findall(r"\d+", title))
    size_numbers = set(re.findall(r"\d+", size))
    said = squash(size) in {squash(w) for w in words(title)} or (
        size_numbers and size_numbers <= title_numbers
    )
    if said:
        return title
    return f"{title}, {'Size ' if english else ''}{size}"


def _compose_in_place(product: Product, title: str, limit: int) -> str:
    """CJK titles: the color before the product type, the brand first, the size last."""
    lowered = {norm(w) for w in words(title)}
    color = attribute(product, "color", "colour")
    if color and not any(norm(w) in lowered for w in words(color)) and color not in title:
        title = _insert_before_type(title, color, product_type(product))
    brand = product.brand.strip() if product.brand else ""
    if brand:
        at = squash(title).find(squash(brand))
        if at < 0:
            title = f"{brand} {title}"
        elif at > 0:
            title = _brand_first(title, brand)
    size = attribute(product, "size")
    if size and squash(size) not in squash(title):
        title = f"{title} {size}"
    return fit_title(" ".join(title.split()), limit)


def _brand_first(title: str, brand: str) -> str:
    tokens = title.split(" ")
    for i in range(len(tokens)):
        for span in range(1, min(4, len(tokens) - i) + 1):
            if squash(" ".join(tokens[i : i + span])) == squash(brand):
                rest = tokens[:i] + tokens[i + span :]
                return " ".join([*tokens[i : i + span], *rest])
    return title


def clean_description(product: Product, limit: int) -> str:
    """The merchant's own description: sentences split where an export ran them together,
    anything instruction-like dropped, ending with a whole sentence, within the limit."""
    text = _plain(product.description)
    if not text:
        return ""
    joined = set(words(product.title)) | set(words(product.brand or ""))
    text = " ".join(
        word if word in joined else RUN_TOGETHER.sub(". ", word) for word in text.split(" ")
    )
    kept, _ = split_injected(text)
    text = " ".join(kept)
    last = words(text)[-1] if words(text) else ""
    if text and complete_sentences(text) != text and is_content_word(last) and text[-1].isalnum():
        # A description that ends on a content word without a full stop is finished, only
        # unpunctuated; one that ends on "in" or "with" was cut off and loses that part.
        text += "。" if is_cjk_locale(product.locale) else "."
    return fit_description(complete_sentences(text), limit)


# Sentence frames per language: (a named attribute, the product in a sentence). Other
# languages fall back to the product's own title as a sentence.
_FRAMES: dict[str, tuple[str, str]] = {
    "en": ("{name}: {value}.", "{title}."),
    "de": ("{name}: {value}.", "{title}."),
    "fr": ("{name} : {value}.", "{title}."),
    "es": ("{name}: {value}.", "{title}."),
    "it": ("{name}: {value}.", "{title}."),
    "nl": ("{name}: {value}.", "{title}."),
    "zh": ("{name}为{value}。", "{title}。"),
    "ja": ("{name}は{value}です。", "{title}。"),
    "ko": ("{name}: {value}.", "{title}."),
}
_EN_LOWER = frozenset({"color", "colour", "season", "usage", "material"})
_EN_GENDER = {
    "men": "Made for men.",
    "women": "Made for women.",
    "boys": "Made for boys.",
    "girls": "Made for girls.",
    "unisex": "Unisex.",
}
_EN_ATTRIBUTES = {
    "color": "It comes in {value}.",
    "colour": "It comes in {value}.",
    "material": "It is made of {value}.",
    "size": "Size: {value}.",
    "season": "For the {value} season.",
    "usage": "For {value} use.",
}


def template_description(
    product: Product, title: str, limit: int, cleaned: str | None = None
) -> str:
    """A description in the product's language, in sentences, from its fields only: the
    merchant's own description cleaned (else the title as a sentence), then one sentence for
    each attribute it does not mention yet. cleaned: clean_description's result, when the
    caller has it already."""
    lang = language(product.locale)
    attribute_frame, title_frame = _FRAMES.get(lang, ("{name}: {value}.", "{title}."))
    base = clean_description(product, limit) if cleaned is None else cleaned
    sentences = [base or title_frame.format(title=title.rstrip(" .\u3002"))]
    said = " ".join(sentences)
    for name, value in sorted(product.attributes.items()):
        value = " ".join(value.split()).rstrip(".\u3002")
        if not value or mentions(said, name.lower(), value):
            continue
        shown_name = name.replace("_", " ")
        if lang == "en" and name.lower() == "gender":
            sentences.append(_EN_GENDER.get(value.lower(), f"For {value}."))
        elif lang == "en":
            shown = value.lower() if name.lower() in _EN_LOWER else value
            frame = _EN_ATTRIBUTES.get(name.lower(), attribute_frame)
            sentences.append(
                frame.format(name=shown_name[:1].upper() + shown_name[1:], value=shown)
            )
        else:
            sentences.append(attribute_frame.format(name=shown_name, value=value))
    joiner = "" if lang in ("zh", "ja") else " "
    text = joiner.join(sentences)
    return fit_description(text, limit) or fit_description(sentences[0], limit)
