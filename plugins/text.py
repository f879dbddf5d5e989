"""Small text helpers shared by the judge and the candidate builders: words, their comparable
forms, scripts, sentences and the product type of a title.

Everything here is deterministic and language-light: Latin-script text is read word by word,
CJK text character by character (it has no spaces).
"""

from __future__ import annotations

import re
import unicodedata

from copyflow.plugins import lexicon
from copyflow.plugins.lexicon import COLORS, GENDER_WORDS, STOPWORDS, UNIT_FORMS, UNITS
from copyflow.schemas import Product

# A word: letters and digits, joined by inner hyphens, apostrophes or dots ("T-shirt",
# "Men's", "usb-c", "2.5"); a run of CJK characters is one word too.
WORD = re.compile(r"[^\W_]+(?:['\u2019\-.][^\W_]+)*", re.UNICODE)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
CJK_LOCALES = ("zh", "ja", "ko")
# Where a sentence ends: Latin or CJK full stop, question or exclamation mark, then optional
# closing quotes or brackets.
SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f\u2026][\"'\u201d\u2019)\]\u300d\u300f\uff09]*$")
_POSSESSIVE = re.compile(r"(?:'s|\u2019s|s'|s\u2019)$")
# Words a title may hold without any field giving them: they join facts, they state none.
FUNCTION_WORDS = (
    lexicon.words("a an and & the of for with in on to by from or set pack pair size x")
    | STOPWORDS["en"]
)
# Where the head of a title ends: its qualifiers follow ("... Knobs, Chrome", "Bag with ...").
_QUALIFIER = re.compile(
    r"\s+[-\u2013|/]\s+|[,;:(\[]|\s+(?:for|with|by|featuring|includes?|fits|compatible|in)\s+",
    re.IGNORECASE,
)


def language(locale: str) -> str:
    return locale.split("-")[0].lower()


def is_cjk_locale(locale: str) -> bool:
    return language(locale) in CJK_LOCALES


def norm(word: str) -> str:
    """A comparable form: NFKC, lower case, no possessive, singular ("Knobs" -> "knob",
    "Men's" -> "men", "Watches" -> "watch", "Batteries" -> "battery")."""
    w = unicodedata.normalize("NFKC", word).lower().replace("\u2019", "'")
    w = _POSSESSIVE.sub("", w).strip("'.")
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and re.search(r"(?:ss|sh|ch|x|z)es$", w):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def squash(text: str) -> str:
    """Letters and digits only, lower case: "Pro Tec" and "Protec" are one brand."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


def words(text: str) -> list[str]:
    return WORD.findall(text)


def word_forms(text: str) -> set[str]:
    """Every comparable form text supports: each word, its hyphen parts and their joins, and
    each CJK character (CJK text has no word boundaries to trust)."""
    forms: set[str] = set()
    for word in words(text):
        forms.add(norm(word))
        parts = re.split(r"[-'.\u2019]", word)
        if len(parts) > 1:
            forms.update(norm(p) for p in parts if p)
            forms.add(norm("".join(parts)))
    forms.update(CJK.findall(text))
    return forms


def is_content_word(word: str) -> bool:
    """A word that states something: not a function word, not a number (numbers are checked
    as values), not a unit."""
    lowered = norm(word)
    if lowered in FUNCTION_WORDS or not any(c.isalpha() for c in word):
        return False
    return re.fullmatch(rf"(?i)\d+(?:[.,/-]\d+)*\s*(?:{UNITS})", word) is None


def title_case_share(text: str) -> float:
    """Share of alphabetic words that start with a capital letter (CJK has no case: 1.0)."""
    latin = [w for w in words(text) if w[0].isalpha() and not CJK.match(w)]
    if not latin:
        return 1.0
    return sum(w[0].isupper() for w in latin) / len(latin)


def source_text(product: Product, separator: str = "\n") -> str:
    """Every field of the product that copy may draw on, joined by separator."""
    parts = [product.title, product.description, product.brand or "", *product.category]
    for name, value in product.attributes.items():
        parts += [name, value]
    parts += product.keywords
    return separator.join(parts)


def attribute(product: Product, *names: str) -> str | None:
    """An attribute's value by any of its names, case-insensitive."""
    wanted = {n.lower() for n in names}
    for name, value in product.attributes.items():
        if name.lower() in wanted and value.strip():
            return value.strip()
    return None


def _head(title: str) -> str:
    """The title before its first qualifier ("Range Kleen 8224 Gas Range Knobs, Chrome" ->
    "Range Kleen 8224 Gas Range Knobs")."""
    head = _QUALIFIER.split(title, maxsplit=1)[0].strip()
    return head or title


def _typeless(word: str, product: Product) -> bool:
    """A word that cannot be the product type: a color, a gender word, a number or code, a
    unit, a size, or part of the brand."""
    lowered = norm(word)
    genders = {g for forms in GENDER_WORDS.values() for g in forms}
    brand = {norm(w) for w in words(product.brand or "")}
    return (
        lowered in COLORS
        or lowered in genders
        or lowered in brand
        or lowered in FUNCTION_WORDS
        or word.lower() in UNIT_FORMS
        or any(c.isdigit() for c in word)
        or re.fullmatch(r"(?i)x{0,3}[sml]|x{1,3}l|\d?xl", word) is not None
    )


def _lexicon_type(head: list[str]) -> str | None:
    """The last word of the head that names a common kind of product ("shirt check turtle"
    -> "shirt"), for titles whose words are in no useful order."""
    for word in reversed(head):
        if norm(word) in _PRODUCT_NOUNS:
            return word
    return None


_PRODUCT_NOUNS = frozenset(norm(w) for w in lexicon.PRODUCT_NOUNS)


def product_type(product: Product) -> str | None:
    """What the product is, as its title names it: the category leaf when the title holds
    it ("Watches" -> "Watch"), else the head noun phrase of the title: the last one or two
    words before its qualifiers that are not a color, gender, number or brand. None when the
    title has no such word."""
    title = " ".join(product.title.split())
    if is_cjk_locale(product.locale) or CJK.search(title):
        return _cjk_type(product, title)
    title_words = words(title)
    if product.category:
        leaf = {norm(w) for w in words(product.category[-1])} - FUNCTION_WORDS
        found = [w for w in title_words if norm(w) in leaf]
        if found:
            return " ".join(dict.fromkeys(found))
    head = words(_head(title))
    named = _lexicon_type(head)
    last = next((w for w in reversed(head) if not _typeless(w, product)), None)
    if named and named != last:
        return named
    kept: list[str] = []
    for word in reversed(head):
        if _typeless(word, product):
            if kept:
                break
            continue
        kept.insert(0, word)
        if len(kept) == 2:
            break
    return " ".join(kept) or None


def _cjk_type(product: Product, title: str) -> str | None:
    """CJK titles name the product last: the category leaf when the title holds it, else the
    last CJK run of the title."""
    if product.category and product.category[-1].strip() in title:
        return product.category[-1].strip()
    runs = re.findall(rf"(?:{CJK.pattern})+", title)
    return runs[-1] if runs else None


def type_head(phrase: str) -> str:
    """The word of a product-type phrase that must be kept: its last word (its last two CJK
    characters when it is CJK: "生啤酒" -> "啤酒")."""
    if CJK.search(phrase):
        return phrase[-2:]
    return words(phrase)[-1] if words(phrase) else phrase


def holds_type(text: str, phrase: str) -> bool:
    head = type_head(phrase)
    if CJK.search(head):
        return head in text
    return norm(head) in word_forms(text)


def complete_sentences(text: str) -> str:
    """The text up to the end of its last complete sentence ("" when it has none)."""
    text = " ".join(text.split())
    if SENTENCE_END.search(text):
        return text
    ends = list(
        re.finditer(r"[.!?\u3002\uff01\uff1f](?=[\"'\u201d\u2019)\]]*(?:\s|$)|[^\x00-\x7f])", text)
    )
    ends = [m for m in ends if not _decimal_point(text, m.start())]
    if not ends:
        return ""
    return text[: ends[-1].end()].strip()


def _decimal_point(text: str, index: int) -> bool:
    return (
        text[index] == "."
        and 0 < index < len(text) - 1
        and text[index - 1].isdigit()
        and text[index + 1].isdigit()
    )
