from __future__ import annotations

import pytest

from plugins.generators import ParseError, parse_copy


def test_parses_title_and_description() -> None:
    copy = parse_copy("TITLE: Acme Blue Mug\nDESCRIPTION: A blue mug\nfor tea.")
    assert copy.title == "Acme Blue Mug"
    assert copy.description == "A blue mug for tea."


def test_markers_are_case_insensitive_and_spacing_tolerant() -> None:
    copy = parse_copy("  title :  Mug  \n description:Blue mug")
    assert (copy.title, copy.description) == ("Mug", "Blue mug")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no TITLE"),
        ("Here is your title: Mug", "text before TITLE"),
        ("TITLE: Mug", "no DESCRIPTION"),
        ("TITLE:\nDESCRIPTION: Blue mug", "empty title"),
        ("TITLE: Mug\nDESCRIPTION:   ", "empty description"),
        ("TITLE: Mug\nTITLE: Cup\nDESCRIPTION: x", "TITLE given twice"),
    ],
)
def test_rejects_anything_else(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_copy(text)
