"""The answer frame's state machine on its own, and its two adapters to the decoding loops."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from copyflow.plugins.generators.frame import (
    Frame,
    FrameHook,
    FrameLogits,
    FrameSpec,
    FrameStop,
    Phase,
)

NEWLINE, EOS = 10, 2
MARKER = (10, 50, 51, 52)  # "\n", "DESCRIPT", "ION", ":"
SPEC = FrameSpec(
    marker=MARKER,
    breaks=frozenset({NEWLINE, 11}),  # 11: a token like "\n\n"
    ends=frozenset({EOS}),
    title_budget=4,
    description_budget=5,
)


def run(proposals: Sequence[int], spec: FrameSpec = SPEC) -> tuple[list[int], Frame]:
    """Feed proposals until the frame is done; the row's emitted tokens."""
    frame = Frame(spec)
    out: list[int] = []
    for proposed in proposals:
        token = frame.step(proposed)
        if token is not None:
            out.append(token)
        if frame.done:
            break
    return out, frame


def test_a_newline_in_the_title_forces_the_description_marker() -> None:
    out, frame = run([20, 21, NEWLINE, 99, 99, 99, 30, 31, NEWLINE])
    # The marker replaces whatever the model proposes while it is forced.
    assert out == [20, 21, *MARKER, 30, 31]
    assert frame.done
    assert frame.split(out) == ([20, 21], [30, 31])


def test_end_of_turn_in_the_title_forces_the_marker_too() -> None:
    out, _ = run([20, EOS, 0, 0, 0, 30, EOS])
    assert out == [20, *MARKER, 30]


def test_a_spent_title_budget_forces_the_marker() -> None:
    out, frame = run([20, 21, 22, 23, 24, 0, 0, 0, 30, EOS])
    assert out == [20, 21, 22, 23, *MARKER, 30]
    assert frame.split(out)[0] == [20, 21, 22, 23]


def test_a_spent_description_budget_ends_the_row_after_its_last_token() -> None:
    frame = Frame(SPEC)
    out = [
        t for t in (frame.step(p) for p in [20, NEWLINE, 0, 0, 0, 30, 31, 32, 33]) if t is not None
    ]
    assert not frame.done
    assert frame.step(34) == 34  # the fifth description token is emitted, then the row ends
    assert frame.done
    assert frame.split([*out, 34])[1] == [30, 31, 32, 33, 34]
    assert frame.step(35) is None


def test_a_newline_or_end_of_turn_in_the_description_ends_the_row_without_it() -> None:
    for end in (NEWLINE, 11, EOS):
        out, frame = run([20, NEWLINE, 0, 0, 0, 30, end, 40])
        assert out == [20, *MARKER, 30]
        assert frame.done and frame.phase is Phase.DONE


def test_every_answer_holds_exactly_one_marker() -> None:
    # Whatever the model proposes, the marker appears once and the title has no line break.
    for proposals in (
        [NEWLINE] * 20,
        [EOS] * 20,
        [20] * 20,
        [*MARKER, *MARKER, 20, NEWLINE, *MARKER],
        [20, 11, 11, 11, 11, 30, 11],
    ):
        out, frame = run(proposals)
        starts = [i for i in range(len(out)) if tuple(out[i : i + len(MARKER)]) == MARKER]
        assert len(starts) == 1, (proposals, out)
        title, description = frame.split(out)
        assert not set(title) & SPEC.breaks
        assert not set(description) & (SPEC.breaks | SPEC.ends)


def test_a_row_cut_before_the_description_has_none() -> None:
    frame = Frame(SPEC)
    out = [t for t in (frame.step(p) for p in [20, 21, NEWLINE]) if t is not None]
    assert out == [20, 21, MARKER[0]]  # the overall cap stops it inside the marker
    assert frame.split(out) == ([20, 21], [])


def test_the_hook_works_on_live_rows_by_their_index() -> None:
    frames = [Frame(SPEC), Frame(SPEC), Frame(SPEC)]
    hook = FrameHook(frames)
    assert hook([0, 2], [20, NEWLINE]) == [(20, False), (MARKER[0], False)]
    assert frames[1].emitted == 0


def test_logits_processor_forces_the_frames_choice_and_stopping_follows() -> None:
    frames = [Frame(SPEC), Frame(SPEC)]
    logits, stop = FrameLogits(frames, EOS), FrameStop(frames)
    scores = torch.zeros(2, 60)
    scores[0, 20] = 5.0
    scores[1, NEWLINE] = 5.0
    forced = logits(torch.zeros(2, 3, dtype=torch.long), scores)  # type: ignore[arg-type]
    assert forced.argmax(-1).tolist() == [20, MARKER[0]]
    assert torch.isinf(forced).sum(-1).tolist() == [59, 59]
    assert stop(torch.zeros(2, 3, dtype=torch.long), forced).tolist() == [False, False]  # type: ignore[arg-type]
    frames[0].phase = Phase.DONE
    again = logits(torch.zeros(2, 4, dtype=torch.long), scores)  # type: ignore[arg-type]
    assert again.argmax(-1).tolist() == [EOS, MARKER[1]]  # a finished row only gets padding
    assert stop(torch.zeros(2, 4, dtype=torch.long), again).tolist() == [True, False]  # type: ignore[arg-type]
