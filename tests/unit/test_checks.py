from __future__ import annotations

from copyflow.plugins.validators import check_not_degenerate


def test_degenerate_text_fails() -> None:
    looping = "a wide-brimmed waist, " * 10
    assert not check_not_degenerate(looping).passed
    assert "repeat" in check_not_degenerate(looping).detail
    assert not check_not_degenerate("   ").passed


def test_ordinary_copy_passes() -> None:
    text = "Acme Blue Mug\nA blue mug from Acme for coffee or tea at home."
    assert check_not_degenerate(text).passed
