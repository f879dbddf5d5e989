"""A simulated merchant with a house style: does training on its accepted edits teach it?

From fashion_styles.jsonl: the input is the catalog attributes plus a messy raw title derived
from the real one (lower case, gender and color words dropped, words shuffled); the accepted
edit is the real title. A LoRA adapter is trained on N such edits and scored on held-out ones
against the base model (title ROUGE-L, exact match), then put through the release gate. A
second adapter, trained on the same inputs with the targets shuffled between products, must be
refused by the gate. Prints training time and peak memory; the last line is one JSON object.

    python -m bench.style [--quick] [--train 500] [--holdout 200] [--epochs 2]
        [--variant both|house|shuffled] [--output F]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from bench.common import SHARED_DATA, report
from copyflow.evaluation.data import messy
from copyflow.plugins.review import CopyReviewer
from copyflow.schemas import Product, load_settings
from copyflow.trainer.examples import Example
from copyflow.trainer.gate import decide, evaluate
from copyflow.trainer.lora import train_lora


def house_examples(count: int, data_dir: Path = SHARED_DATA) -> list[Example]:
    rng = random.Random(7)
    examples = []
    with (data_dir / "fashion_styles.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            attributes = {k: row[k] for k in ("gender", "color", "season", "usage") if row.get(k)}
            product = Product(
                product_id=row["id"],
                title=messy(row, rng),
                category=[row[k] for k in ("master_category", "sub_category") if row.get(k)],
                attributes=attributes,
            )
            # The description must not repeat the title: the loop check counts repeated
            # 3-word runs across both, and would fail the merchant's own text.
            kind = (row.get("sub_category") or "item").lower()
            examples.append(
                Example(
                    example_id=row["id"],
                    tenant="house-style",
                    channel="default",
                    product=product,
                    title=row["title"],
                    description=f"A {kind} piece for {row.get('usage', 'every day').lower()} wear.",
                    action="accepted",
                )
            )
            if len(examples) == count:
                break
    return examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 edits, 20 held out, 1 epoch")
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--holdout", type=int, default=200)
    parser.add_argument("--epochs", type=int)
    parser.add_argument(
        "--variant",
        choices=["both", "house", "shuffled"],
        default="both",
        help="train on the real targets, the shuffled ones, or both",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.train, args.holdout, args.epochs = 40, 20, 1
    from copyflow.wiring import build_trainer_spec

    settings = load_settings()
    trainer = settings.trainer
    if args.epochs:
        trainer = trainer.model_copy(update={"epochs": args.epochs})
    spec = build_trainer_spec(settings)
    examples = house_examples(args.train + args.holdout)
    train, holdout = examples[: args.train], examples[args.train :]
    reviewer = CopyReviewer(settings.checks.banned_phrases)
    results: dict[str, Any] = {"benchmark": "style", "train": len(train), "holdout": len(holdout)}
    variants = {"house_style": train} if args.variant != "shuffled" else {}
    if args.variant != "house":
        targets = [(e.title, e.description) for e in train]
        random.Random(11).shuffle(targets)
        variants["shuffled_targets"] = [
            e.model_copy(update={"title": t, "description": d})
            for e, (t, d) in zip(train, targets, strict=True)
        ]
    with tempfile.TemporaryDirectory() as folder:
        # Trained before the evaluation's generator is built, so the peak RSS reported is
        # training's own (the trainer, too, builds its gate's generator only after training).
        trained = {
            name: train_lora(
                spec.location, trainer.prompt_version, data, holdout, trainer, Path(folder, name)
            )
            for name, data in variants.items()
        }
        generator = spec.build(trainer.device)  # adapters are loaded into it as workers do
        base = evaluate(generator, holdout, reviewer)
        print(f"base model: {base}", flush=True)
        results["base"] = base
        for name, made in trained.items():
            generator.load_adapter(name, str(Path(folder, name)), trainer.prompt_version)
            scores = evaluate(generator, holdout, reviewer, name)
            generator.unload_adapter(name)
            verdict = decide(scores, base, trainer.margin)
            results[name] = {
                **scores,
                "rouge_l_gain_points": round(
                    100 * (scores["rouge_l_title"] - base["rouge_l_title"]), 1
                ),
                "released": verdict.release,
                "verdict": verdict.reason,
                "train_seconds": round(made.seconds, 1),
                "peak_rss_mb": round(made.peak_rss_mb),
                "final_loss": made.losses[-1],
                "holdout_losses": made.holdout_losses,
                "device": made.device,
                "dtype": made.dtype,
            }
            print(f"{name}: {results[name]}", flush=True)
    report(results, args.output)


if __name__ == "__main__":
    main()
