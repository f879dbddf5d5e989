"""Decoding generated tokens never yields a partial character (byte-level BPE splits CJK)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from copyflow.plugins.generators import get_prompt, utf8
from copyflow.plugins.generators.frame import Frame
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.generators.utf8 import REPLACEMENT, decode_complete

TEXT = "铸铁煎锅 26厘米"


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    return AutoTokenizer.from_pretrained(tiny_model_dir)  # SmolLM2's byte-level BPE


def ids(tokenizer: Any, text: str) -> list[int]:
    out: list[int] = tokenizer(text, add_special_tokens=False).input_ids
    return out


def test_a_cjk_string_cut_anywhere_decodes_to_its_complete_characters(tokenizer: Any) -> None:
    tokens = ids(tokenizer, TEXT)
    assert len(tokens) > len(TEXT), "each CJK character takes several tokens"
    partial = 0
    for cut in range(len(tokens) + 1):
        plain = tokenizer.decode(tokens[:cut])
        partial += REPLACEMENT in plain
        text = decode_complete(tokenizer, tokens[:cut])
        assert REPLACEMENT not in text
        assert TEXT.startswith(text)
        # Nothing complete is lost: the text is every character whose bytes all arrived.
        assert len(text.encode()) > len(plain.replace(REPLACEMENT, "").encode()) - 4
        assert text == plain.replace(REPLACEMENT, "")
    assert partial, "the cuts must include cuts inside a character"


def test_a_broken_sequence_inside_the_text_is_dropped(tokenizer: Any) -> None:
    broken = ids(tokenizer, "铸")[:2] + ids(tokenizer, " pan 锅")
    assert REPLACEMENT in tokenizer.decode(broken)
    assert decode_complete(tokenizer, broken) == " pan 锅"


def test_a_replacement_character_the_model_wrote_whole_stays(tokenizer: Any) -> None:
    tokens = ids(tokenizer, f"Pan {REPLACEMENT} 26 cm")
    assert decode_complete(tokenizer, tokens) == f"Pan {REPLACEMENT} 26 cm"
    assert (
        decode_complete(tokenizer, tokens + ids(tokenizer, "锅")[:1]) == f"Pan {REPLACEMENT} 26 cm"
    )


def test_other_tokenizers_drop_the_trailing_partial_tokens(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(utf8, "_token_bytes", lambda tokenizer, tokens: None)
    tokens = ids(tokenizer, TEXT)
    assert decode_complete(tokenizer, tokens[:5]) == "铸"  # 铸 and two bytes of 铁
    assert decode_complete(tokenizer, tokens) == TEXT


def test_a_framed_answer_cut_inside_characters_keeps_whole_ones(tiny_model_dir: Path) -> None:
    """A Chinese title cut by its budget one byte into a character, and a description cut by
    its budget inside a character after a full sentence."""
    generator = TransformersGenerator(
        str(tiny_model_dir), get_prompt("v3"), device="cpu", max_title_tokens=4
    )
    tokenizer = generator.tokenizer
    assert generator._frame is not None
    title = ids(tokenizer, "铸铁")  # three tokens a character: the budget ends inside 铁
    sentence, rest = ids(tokenizer, "适合。"), ids(tokenizer, "厚重铁锅")
    inside = next(k for k in range(1, len(rest)) if tokenizer.decode(rest[:k])[-1] == REPLACEMENT)
    spec = replace(generator._frame, description_budget=len(sentence) + inside)
    frame = Frame(spec)
    # The model's proposals while the marker is forced do not matter.
    proposals = [*title, *[0] * (len(spec.marker) - 2), *sentence, *rest]
    out = [t for t in (frame.step(p) for p in proposals) if t is not None]
    assert frame.done
    assert frame.split(out) == (title[:4], sentence + rest[:inside])
    result = generator._framed_result(out, frame, 0, generator.prompt)
    assert REPLACEMENT in result.raw_text  # the raw answer shows the cut bytes ...
    assert (result.title, result.description) == ("铸", "适合。")  # ... the copy never does
    assert result.parse_error is None
