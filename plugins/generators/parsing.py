"""Strict parsing of the structured answer ``TITLE: ...`` / ``DESCRIPTION: ...``, and the
clean-up every answer gets: no frame words in a field, descriptions end with a full sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass

# The answer's frame: the title's line starts with TITLE_PREFIX, the description's with
# DESCRIPTION_MARKER's second line.
TITLE_PREFIX = "TITLE:"
DESCRIPTION_MARKER = "\nDESCRIPTION:"

_FIELD = re.compile(r"^\s*(TITLE|DESCRIPTION)\s*:\s*(.*)$", re.IGNORECASE)


class ParseError(ValueError):
    pass


@dataclass(frozen=True)
class ParsedCopy:
    title: str
    description: str


def parse_copy(text: str) -> ParsedCopy:
    """Parse the model's answer; anything but exactly one title and one description fails."""
    fields: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match:
            current = match.group(1).upper()
            if current in fields:
                raise ParseError(f"{current} given twice")
            fields[current] = [match.group(2)]
        elif current is not None:
            fields[current].append(line)
        elif line.strip():
            raise ParseError(f"text before TITLE: {line.strip()[:60]!r}")
    if "TITLE" not in fields:
        raise ParseError("no TITLE: line")
    if "DESCRIPTION" not in fields:
        raise ParseError("no DESCRIPTION: line")
    title = " ".join(" ".join(fields["TITLE"]).split())
    description = " ".join(" ".join(fields["DESCRIPTION"]).split())
    if not title:
        raise ParseError("empty title")
    if not description:
        raise ParseError("empty description")
    return ParsedCopy(title=title, description=description)


# A sentence ends with . ! ? (not an ellipsis) before a space or the end, or with the CJK full
# stop, exclamation or question mark anywhere; closing quotes and brackets may follow.
_CJK_ENDS = "\u3002\uff01\uff1f"
_CLOSERS = "\"'\u201d\u2019\u00bb)]\uff09\u300d\u300f\u3011"
_SENTENCE_END = re.compile(rf"(?<!\.)[.!?{_CJK_ENDS}][.!?{_CJK_ENDS}]*[{re.escape(_CLOSERS)}]*")
# The frame's words: a field never holds them (a small model repeats or inlines them).
_FRAME_WORD = re.compile(r"(?i:\b(?:TITLE|DESCRIPTION)\s*:)|\bDESCRIPTION\b")
_LEADING_FRAME_WORD = re.compile(r"^\s*(?:TITLE|DESCRIPTION)\s*:\s*", re.IGNORECASE)
# Hyphen, en and em dash, bar, colon, ..., middle dot, bullet: what a title is joined with.
_SEPARATORS = " \t-\u2013\u2014|:;,/\\\u00b7\u2022*_~&"


def sentence_ends(text: str) -> list[int]:
    """The positions just after each complete sentence of ``text``."""
    ends = []
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        dots = match.group().rstrip(_CLOSERS)
        if len(dots) > 1 and set(dots) == {"."}:
            continue  # an ellipsis: the sentence trails off
        if end == len(text) or text[end].isspace() or dots[0] in _CJK_ENDS:
            ends.append(end)
    return ends


def cut_to_sentence(text: str) -> str:
    """The text up to the end of its last complete sentence; "" when it has none (a
    description cut by its token budget stops mid-sentence)."""
    text = text.strip()
    ends = sentence_ends(text)
    return text[: ends[-1]] if ends else ""


def clean_title(text: str) -> str:
    """A title without frame words, spare whitespace or separators at either end."""
    text = _strip_leading_frame_words(text)
    match = _FRAME_WORD.search(text)
    if match:
        text = text[: match.start()]
    return " ".join(text.split()).strip(_SEPARATORS)


def clean_description(text: str, invented: frozenset[str] = frozenset()) -> str:
    """A description without frame words, cut back to its last complete sentence, and to
    before the first sentence holding one of the prompt examples' ``invented`` words."""
    text = _strip_leading_frame_words(text)
    match = _FRAME_WORD.search(text)
    if match:
        text = text[: match.start()]
    text = cut_to_sentence(" ".join(text.split()))
    start = 0
    for end in sentence_ends(text) if invented else []:
        if _words(text[start:end]) & invented:
            return text[:start].strip()
        start = end
    return text


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", text.lower()))


def _strip_leading_frame_words(text: str) -> str:
    while match := _LEADING_FRAME_WORD.match(text):
        text = text[match.end() :]
    return text


def finish_copy(title: str, description: str, invented: frozenset[str] = frozenset()) -> ParsedCopy:
    """The copy as delivered: clean fields; an empty title fails, an empty description (no
    complete sentence) does not: the caller decides what to do without one. A title holding
    one of the prompt examples' ``invented`` words copied the example, not the product."""
    title = clean_title(title)
    if not title:
        raise ParseError("empty title")
    copied = sorted(_words(title) & invented)
    if copied:
        raise ParseError(f"the title copies the prompt's example ({', '.join(copied)})")
    return ParsedCopy(title=title, description=clean_description(description, invented))
