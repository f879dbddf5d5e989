"""The answer frame: every framed answer is ``TITLE: <title>`` and ``DESCRIPTION: <description>``.

The prompt ends with ``TITLE:``. The decoding loop lets the model write the title; when the model
ends the title line (a newline or end-of-turn) or the title budget is spent, the loop forces the
tokens of ``\\nDESCRIPTION:``; the model then writes the description, and the end of that line,
end-of-turn or the description budget ends the row. A small model can then neither skip nor
repeat the markers, and each field has a budget of its own.

One state machine per row (:class:`Frame`) serves both decoding paths: copyflow's own greedy loop
(:class:`FrameHook`) and transformers' ``generate()`` (:class:`FrameLogits` with
:class:`FrameStop`), so both produce the same tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria

from copyflow.plugins.generators.parsing import DESCRIPTION_MARKER


class Phase(Enum):
    TITLE = "title"
    MARKER = "marker"  # forcing the description marker's tokens
    DESCRIPTION = "description"
    DONE = "done"


@dataclass(frozen=True)
class FrameSpec:
    """The tokens a frame works with, and the two budgets (in tokens)."""

    marker: tuple[int, ...]  # the tokens of "\nDESCRIPTION:"
    breaks: frozenset[int]  # tokens whose text holds a newline: they end a line
    ends: frozenset[int]  # end-of-turn tokens
    title_budget: int
    description_budget: int

    def __post_init__(self) -> None:
        if not self.marker:
            raise ValueError("the description marker needs at least one token")
        if self.title_budget < 1 or self.description_budget < 1:
            raise ValueError("frame budgets must be at least one token")


def frame_spec(
    tokenizer: Any, ends: Iterable[int], title_budget: int, description_budget: int
) -> FrameSpec:
    """The frame for a tokenizer: its newline tokens found by decoding the whole vocabulary
    once (about 0.3 s for 49k tokens)."""
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    breaks = frozenset(i for i, text in enumerate(texts) if "\n" in text)
    marker = tuple(tokenizer(DESCRIPTION_MARKER, add_special_tokens=False).input_ids)
    return FrameSpec(marker, breaks, frozenset(ends), title_budget, description_budget)


class Frame:
    """One row's answer frame: feed it the model's proposed token at every step; it says which
    token the row emits (or None: the row ends here, emitting nothing)."""

    __slots__ = (
        "_forced",
        "_title_tokens",
        "description_at",
        "description_tokens",
        "emitted",
        "marker_at",
        "phase",
        "spec",
    )

    def __init__(self, spec: FrameSpec) -> None:
        self.spec = spec
        self.phase = Phase.TITLE
        self.emitted = 0  # tokens emitted so far
        self._title_tokens = 0
        self.description_tokens = 0
        self._forced = 0  # marker tokens forced so far
        self.marker_at: int | None = None  # index of the marker's first token in the output
        self.description_at: int | None = None  # index of the description's first token

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def step(self, proposed: int) -> int | None:
        spec = self.spec
        if self.phase is Phase.TITLE:
            if (
                proposed in spec.breaks
                or proposed in spec.ends
                or self._title_tokens >= spec.title_budget
            ):
                self.phase = Phase.MARKER
                self.marker_at = self.emitted
            else:
                self._title_tokens += 1
                self.emitted += 1
                return proposed
        if self.phase is Phase.MARKER:
            token = spec.marker[self._forced]
            self._forced += 1
            self.emitted += 1
            if self._forced == len(spec.marker):
                self.phase = Phase.DESCRIPTION
                self.description_at = self.emitted
            return token
        if self.phase is Phase.DESCRIPTION:
            if proposed in spec.breaks or proposed in spec.ends:
                self.phase = Phase.DONE
                return None
            self.description_tokens += 1
            self.emitted += 1
            if self.description_tokens >= spec.description_budget:
                self.phase = Phase.DONE  # after this token: no step spent on a token dropped
            return proposed
        return None

    def split(self, tokens: Sequence[int]) -> tuple[list[int], list[int]]:
        """The title's and the description's tokens in this row's output ``tokens`` (a row cut
        by the overall token cap may have no description, or only part of the marker)."""
        title_end = self.marker_at if self.marker_at is not None else len(tokens)
        description = [] if self.description_at is None else list(tokens[self.description_at :])
        return list(tokens[:title_end]), description


class FrameHook:
    """decoding.greedy()'s step hook: each live row's token through its frame."""

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.frames = frames

    def __call__(self, rows: list[int], proposed: list[int]) -> list[tuple[int | None, bool]]:
        decisions: list[tuple[int | None, bool]] = []
        for row, token in zip(rows, proposed, strict=True):
            frame = self.frames[row]
            chosen = frame.step(token)
            decisions.append((chosen, frame.done))
        return decisions


class FrameLogits(LogitsProcessor):
    """The frame in transformers' greedy generate(): the row's token (its frame's choice from
    the greedy proposal) gets every bit of probability; a row that ends gets end-of-turn."""

    def __init__(self, frames: Sequence[Frame], end: int) -> None:
        self.frames = frames
        self.end = end

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        proposed = scores.argmax(-1).tolist()
        forced: list[int] = []
        for frame, token in zip(self.frames, proposed, strict=True):
            # A finished row is padding from here on; its frame must not move.
            chosen = None if frame.done else frame.step(token)
            forced.append(self.end if chosen is None else chosen)
        index = torch.tensor(forced, device=scores.device)[:, None]
        out = torch.full_like(scores, -torch.inf)
        out.scatter_(1, index, 0.0)
        return out  # type: ignore[return-value]


class FrameStop(StoppingCriteria):
    """Ends the rows whose frame is done (after the token just emitted)."""

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.frames = frames

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        done = [frame.done for frame in self.frames]
        return torch.tensor(done, device=input_ids.device)  # type: ignore[return-value]
