"""Checks on generated copy. Each returns a CheckResult; any failure sends the copy to fallback."""

from __future__ import annotations

from schemas import CheckResult


def check_not_degenerate(text: str, *, n: int = 3, max_repeat_ratio: float = 0.2) -> CheckResult:
    """Fails on empty text or text whose word n-grams repeat (a looping small model)."""
    words = text.lower().split()
    if not words:
        return CheckResult(name="not_degenerate", passed=False, detail="empty")
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return CheckResult(name="not_degenerate", passed=True)
    repeated = 1 - len(set(grams)) / len(grams)
    passed = repeated <= max_repeat_ratio
    detail = "" if passed else f"{repeated:.0%} of {n}-word sequences repeat"
    return CheckResult(name="not_degenerate", passed=passed, detail=detail)
