"""Cold start from the catalog: a LoRA adapter bootstrapped from N catalog products, against
the base model and the composed title, on held-out products.

Bootstrap: the first N rows of a catalog file become examples as `copyflow train --bootstrap`
makes them (trainer.bootstrap). Held out: the next rows, as `copyflow eval` reads them
(fashion_styles: the attributes plus a messy title as input, the real title as reference;
myntra: the product as it is). For the base model and the adapter (loaded unmerged, as
workers serve it) it reports the title ROUGE-L of the model's own answer against the
reference, and the copy copyflow publishes after the judge's choice: its title ROUGE-L, the
share of titles not the model's (fallbacks) and the judge's headline figures. The composed
title alone is the no-model baseline. Prints training time and peak memory; the last line is
one JSON object, with `ratio` = the adapter's answer ROUGE-L over the base model's.

    python -m bench.bootstrap [--quick] [--data fashion_styles|myntra] [--products 2000]
        [--holdout 200] [--epochs 1] [--output F]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from bench.common import SHARED_DATA, report
from copyflow.evaluation.data import Item, load_items
from copyflow.plugins.candidates import compose_title
from copyflow.plugins.channels import get_channel
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.review import CopyReviewer
from copyflow.plugins.similarity import rouge_l
from copyflow.schemas import load_settings
from copyflow.trainer.bootstrap import bootstrap_examples
from copyflow.trainer.gate import answers
from copyflow.trainer.lora import train_lora

# The judge's faults on published titles and descriptions, as `copyflow eval` heads its table.
_FAULTS = ("title:type_kept", "title:new_words", "title:numbers_kept", "description:complete")


def score(
    generator: TransformersGenerator,
    items: list[Item],
    reviewer: CopyReviewer,
    adapter: str | None,
) -> dict[str, float]:
    from copyflow.trainer.examples import Example

    held = [
        Example(example_id=i.product.product_id, tenant="bench", channel="default",
                product=i.product, title=i.reference_title or "", description="",
                action="accepted")
        for i in items
    ]  # fmt: skip
    rules = get_channel("default")
    own, published, fallbacks = [], [], 0
    failed = dict.fromkeys(_FAULTS, 0)
    for item, result in zip(items, answers(generator, held, adapter), strict=True):
        reference = item.reference_title or ""
        own.append(rouge_l(result.title or "", reference))
        reviewed = reviewer.review(
            item.product,
            rules,
            result.title,
            result.description,
            result.parse_error,
            learned=adapter is not None,
        )
        published.append(rouge_l(reviewed.title, reference))
        fallbacks += reviewed.fallback_used
        for check in reviewed.checks:
            if check.name in failed and not check.passed:
                failed[check.name] += 1
    n = max(1, len(items))
    return {
        "answer_rouge_l_title": sum(own) / n,
        "published_rouge_l_title": sum(published) / n,
        "fallback_rate": fallbacks / n,
        **{f"failed_{name.replace(':', '_')}": count / n for name, count in failed.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 products, 20 held out")
    parser.add_argument("--data", choices=["fashion_styles", "myntra"], default="fashion_styles")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--holdout", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.products, args.holdout = 60, 20
    from copyflow.wiring import build_trainer_spec

    settings = load_settings()
    trainer = settings.trainer.model_copy(update={"epochs": args.epochs})
    path = SHARED_DATA / f"{args.data}.jsonl"
    catalog = [i.product for i in islice(load_items(path), args.products)]
    messy = args.data == "fashion_styles"
    held = list(
        islice(load_items(path, messy_titles=messy), args.products, args.products + args.holdout)
    )
    made = bootstrap_examples(catalog, "bench")
    print(f"bootstrap: {made.summary()}", flush=True)
    reviewer = CopyReviewer(settings.checks.banned_phrases)
    spec = build_trainer_spec(settings)
    generator = spec.build(trainer.device)
    results: dict[str, Any] = {"bench": "bootstrap", "data": args.data, "epochs": args.epochs}
    results["products_used"] = len(made.examples)
    results["products_left_out"] = dict(made.excluded)
    results["holdout"] = len(held)
    composed = [rouge_l(compose_title(i.product, 150), i.reference_title or "") for i in held]
    results["composed_rouge_l_title"] = sum(composed) / max(1, len(composed))
    results["base"] = score(generator, held, reviewer, None)
    print(f"base model: {results['base']}", flush=True)
    examples = made.examples
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        trained = train_lora(
            spec.location, trainer.prompt_version, examples, [], trainer, Path(folder)
        )
        results["train_seconds"] = round(time.perf_counter() - started, 1)
        generator.load_adapter("bootstrap", folder, trainer.prompt_version)
        results["bootstrap"] = score(generator, held, reviewer, "bootstrap")
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    results["final_loss"] = trained.losses[-1]
    base, ours = results["base"], results["bootstrap"]
    results["rouge_l_gain"] = ours["answer_rouge_l_title"] - base["answer_rouge_l_title"]
    results["ratio"] = ours["answer_rouge_l_title"] / max(1e-9, base["answer_rouge_l_title"])
    print(
        f"bootstrap adapter: {ours}\ntrained {len(examples)} examples x {args.epochs} epochs in "
        f"{results['train_seconds']:.0f} s, peak RSS {results['peak_rss_mb']} MB; answer title "
        f"ROUGE-L {base['answer_rouge_l_title']:.3f} -> {ours['answer_rouge_l_title']:.3f} "
        f"(composed alone {results['composed_rouge_l_title']:.3f})",
        flush=True,
    )
    report(results, args.output)


if __name__ == "__main__":
    main()
