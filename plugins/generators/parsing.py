"""Strict parsing of the structured answer ``TITLE: ...`` / ``DESCRIPTION: ...``."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
