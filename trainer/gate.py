"""The evaluation gate: a candidate adapter is released only if it beats what serves now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from copyflow.plugins.channels import get_channel
from copyflow.plugins.generators import GenerationRequest, GenerationResult
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.review import CopyReviewer
from copyflow.plugins.similarity import rouge_l
from copyflow.trainer.examples import Example

# The judge's findings whose failures on the model's own copy the scores count, so two
# models' reports line up.
_CHECKS = (
    "parsed",
    "new_words",
    "type_kept",
    "numbers_kept",
    "grounded",
    "complete",
    "not_degenerate",
    "style",
    "language",
)


def answers(
    generator: TransformersGenerator, holdout: Sequence[Example], adapter: str | None = None
) -> list[GenerationResult]:
    """The model's answers for held-out examples, made as a worker makes them: adapter names
    a LoRA adapter the generator has loaded unmerged (GenerationRequest.adapter), None the
    base model."""
    return generator.generate([GenerationRequest(e.product, e.channel, adapter) for e in holdout])


def evaluate(
    generator: TransformersGenerator,
    holdout: Sequence[Example],
    reviewer: CopyReviewer,
    adapter: str | None = None,
) -> dict[str, float]:
    """Scores of the copy a model makes for held-out examples, against the merchant's text:
    ROUGE-L and exact match of the title, ROUGE-L of the description, and the share of the
    model's copy the judge finds no fault in, once mended as workers mend it (and, per
    finding, the share it failed: see scored). ROUGE-L scores the model's own answer (the
    served copy where it gave none), not the judge's pick: the gate asks whether the adapter
    learned the merchant's edits, and a composed title would hide that."""
    results = answers(generator, holdout, adapter)
    titles, descriptions, exact, clean = [], [], 0, 0
    failed = dict.fromkeys(_CHECKS, 0)
    for example, result in zip(holdout, results, strict=True):
        title, description, faults = scored(reviewer, example, result, adapter is not None)
        titles.append(rouge_l(title, example.title))
        descriptions.append(rouge_l(description, example.description))
        exact += title.strip().lower() == example.title.strip().lower()
        clean += not faults
        for name in {fault.split(":", 1)[-1] for fault in faults} & failed.keys():
            failed[name] += 1
    n = max(1, len(holdout))
    return {
        "rouge_l_title": sum(titles) / n,
        "rouge_l_description": sum(descriptions) / n,
        "exact_match_title": exact / n,
        "checks_passed": clean / n,
        **{f"failed_{name}": count / n for name, count in failed.items()},
    }


def scored(
    reviewer: CopyReviewer, example: Example, result: GenerationResult, learned: bool
) -> tuple[str, str, set[str]]:
    """The title and description a model's answer gives for one held-out example, and the
    faults of the copy a worker would serve from it ("parsed", "title:<finding>",
    "description:<finding>"). The answer is reviewed as workers review it (learned: it comes
    from an adapter); where they would serve its repair (the answer less what the judge
    objects to), the answer's faults in that field are mended, not counted."""
    rules = get_channel(example.channel)
    reviewed = reviewer.review(
        example.product,
        rules,
        result.title,
        result.description,
        result.parse_error,
        learned=learned,
    )
    title = result.title if result.parse_error is None and result.title else reviewed.title
    description = result.description or reviewed.description
    mended = {
        kind
        for kind, source in (
            ("title", reviewed.title_source),
            ("description", reviewed.description_source),
        )
        if source == "repaired"
    }
    # The model's own faults are listed as "model title:<finding>" and
    # "model description:<finding>"; "parsed" is the answer's parse.
    faults = {
        c.name.removeprefix("model ")
        for c in reviewed.checks
        if not c.passed and (c.name.startswith("model ") or c.name == "parsed")
    }
    return title, description, {f for f in faults if f.split(":", 1)[0] not in mended}


@dataclass(frozen=True)
class Verdict:
    release: bool
    reason: str


def decide(candidate: dict[str, float], current: dict[str, float], margin: float) -> Verdict:
    """Release when the candidate's title ROUGE-L beats the current one's by the margin and it
    passes the checks at least as often, less the same margin."""
    gain = candidate["rouge_l_title"] - current["rouge_l_title"]
    if gain < margin:
        return Verdict(False, f"ROUGE-L gain {gain:+.3f} is below the margin {margin:.3f}")
    drop = current["checks_passed"] - candidate["checks_passed"]
    if drop > margin:
        return Verdict(False, f"passes the checks {drop:.1%} less often")
    return Verdict(True, f"ROUGE-L gain {gain:+.3f} (margin {margin:.3f})")
