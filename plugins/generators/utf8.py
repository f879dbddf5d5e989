"""Decoding generated tokens to text without partial characters.

Byte-level BPE splits a CJK character into up to three or four tokens. A row that stops on a
budget between them, or a model that emits a lead byte and then something else, leaves bytes
that are no character; the tokenizer decodes them as U+FFFD. Such bytes are dropped here, while a
U+FFFD that the model wrote as a whole character (copied from the product) stays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

REPLACEMENT = "\ufffd"
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")
# The decoders whose output is the tokens' bytes put together: GPT-2 style byte-level BPE, also
# as the GGUF conversion spells it (byte fallback, fuse, "▁" to space, byte level).
_BYTE_DECODERS = frozenset({"ByteLevel", "ByteFallback", "Fuse", "Replace"})


def decode_complete(tokenizer: Any, tokens: Sequence[int]) -> str:
    """``tokenizer.decode(tokens, skip_special_tokens=True)`` without the U+FFFD of incomplete
    byte sequences (the usual case, no U+FFFD at all, costs one decode)."""
    text: str = tokenizer.decode(tokens, skip_special_tokens=True)
    if REPLACEMENT not in text:
        return text
    data = _token_bytes(tokenizer, tokens)
    # The byte view must reproduce the tokenizer's text, else it is not this tokenizer's view.
    if data is not None and _same(data.decode("utf-8", errors="replace"), text):
        return data.decode("utf-8", errors="ignore")
    return _trimmed(tokenizer, tokens)


def _same(a: str, b: str) -> bool:
    # Decoders may substitute one U+FFFD per byte or one per broken sequence.
    return a.replace(REPLACEMENT, "") == b.replace(REPLACEMENT, "")


def _trimmed(tokenizer: Any, tokens: Sequence[int]) -> str:
    """Any other tokenizer: drop the trailing tokens that end in U+FFFD (a character cut by the
    budget is at most three tokens short), then any U+FFFD left."""
    end = len(tokens)
    text: str = tokenizer.decode(tokens, skip_special_tokens=True)
    while end > 0 and len(tokens) - end < 3 and text.endswith(REPLACEMENT):
        end -= 1
        text = tokenizer.decode(tokens[:end], skip_special_tokens=True)
    return text.replace(REPLACEMENT, "")


def _token_bytes(tokenizer: Any, tokens: Sequence[int]) -> bytes | None:
    """The bytes the tokens stand for, when the tokenizer is byte-level; else None."""
    decoder = getattr(getattr(tokenizer, "backend_tokenizer", None), "decoder", None)
    if decoder is None or not _byte_level(decoder.__getstate__()):
        return None
    special = set(tokenizer.all_special_ids)
    table = _byte_decoder()
    parts = []
    for piece, token in zip(tokenizer.convert_ids_to_tokens(list(tokens)), tokens, strict=True):
        if token in special or piece is None:
            continue
        byte = _BYTE_TOKEN.fullmatch(piece)
        if byte:
            parts.append(bytes([int(byte.group(1), 16)]))
        elif all(char in table for char in piece):
            parts.append(bytes(table[char] for char in piece))
        else:  # as the byte-level decoder does: a piece outside its alphabet is plain text
            parts.append(piece.replace("\u2581", " ").encode())
    return b"".join(parts)


@cache
def _byte_level(serialized: bytes) -> bool:
    decoder = json.loads(serialized)
    steps = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    kinds = {step.get("type") for step in steps}
    return "ByteLevel" in kinds and kinds <= _BYTE_DECODERS


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-character table, inverted: printable bytes stand for themselves, the
    others for characters from U+0100 on."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\u00a1"), ord("\u00ac") + 1),
        *range(ord("\u00ae"), ord("\u00ff") + 1),
    ]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, chars, strict=True)}
