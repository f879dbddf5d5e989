from __future__ import annotations

import pytest

from copyflow.plugins.generators import ParseError, parse_copy
from copyflow.plugins.generators.parsing import clean_title, cut_to_sentence, finish_copy


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


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("A blue shirt. Made of", "A blue shirt."),
        ("A blue shirt. It fits well! Is it", "A blue shirt. It fits well!"),
        ("A blue shirt", ""),  # no complete sentence: no description
        ("A shirt, 2.5 cm longer", ""),  # a decimal point ends no sentence
        ('He said "Soft." Then', 'He said "Soft."'),
        ("A shirt (cotton.) With", "A shirt (cotton.)"),
        ("Great for everyday...", ""),  # an ellipsis trails off
        ("Great for everyday... A shirt.", "Great for everyday... A shirt."),
        ("适合煎炒的厚重铁锅。非常", "适合煎炒的厚重铁锅。"),
        ("柔软的瑜伽垫\uff01」以及", "柔软的瑜伽垫\uff01」"),
        ("保温保冷に優れた水筒です。持ち", "保温保冷に優れた水筒です。"),
    ],
)
def test_descriptions_are_cut_back_to_their_last_complete_sentence(text: str, cut: str) -> None:
    assert cut_to_sentence(text) == cut


@pytest.mark.parametrize(
    ("text", "title"),
    [
        (" Acme Blue Mug - ", "Acme Blue Mug"),
        ("Acme Blue Mug |", "Acme Blue Mug"),
        ("Acme Blue Mug, ", "Acme Blue Mug"),
        ("TITLE: TITLE: Acme Mug", "Acme Mug"),
        ("Acme Mug DESCRIPTION: A mug.", "Acme Mug"),
        ("Acme Mug description: a mug", "Acme Mug"),
        ("Acme Mug DESCRIPTION", "Acme Mug"),
        ("Job Description Notebook", "Job Description Notebook"),  # a word, not the frame's
        ("C-Shaped Desk Lamp", "C-Shaped Desk Lamp"),
    ],
)
def test_titles_lose_frame_words_and_trailing_separators(text: str, title: str) -> None:
    assert clean_title(text) == title


def test_finished_copy_keeps_an_empty_description_but_not_an_empty_title() -> None:
    copy = finish_copy("Acme Blue Mug", "DESCRIPTION: A blue mug for")
    assert (copy.title, copy.description) == ("Acme Blue Mug", "")
    with pytest.raises(ParseError, match="empty title"):
        finish_copy(" - TITLE: ", "A blue mug.")


def test_sentences_copied_from_the_prompt_example_are_dropped() -> None:
    invented = frozenset({"ombly", "drazzen", "plimtock"})
    copy = finish_copy("Oak Board", "A large oak board. An ombly drazzen. It is oak.", invented)
    assert copy.description == "A large oak board."
    assert finish_copy("Oak Board", "An ombly drazzen from Oak.", invented).description == ""
    with pytest.raises(ParseError, match=r"copies the prompt's example \(plimtock\)"):
        finish_copy("Plimtock Oak Board", "A board.", invented)
