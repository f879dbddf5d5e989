"""LoRA training steps: the trainer's step (trainer.lora.backward_in_slices: the prompt prefix
the batch's rows share computed once, logits only on the answer's positions, the rows' own
parts in slices of at most trainer.step_tokens tokens) against the plain
``model(**batch).loss`` (every row whole, logits at every position), side by side on the same
batches. Both give the same loss and gradients.

The examples are bench/style.py's (a messy fashion_styles title as input, the real title as
target) with the default model, the workers' prompt and the trainer's default LoRA settings.
Each variant runs in a process of its own, in alternating order, so that each one's peak
memory is its own. Prints seconds per step, examples/s and peak RSS for both and the ratio;
the last line is one JSON object.

    python -m bench.training_step [--quick] [--steps 6] [--rounds 2] [--output F]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from bench.common import report
from bench.style import house_examples
from copyflow.plugins.generators.smollm2 import prepare_default_model
from copyflow.schemas import Settings

VARIANTS = ("full", "copyflow")


def _child(variant: str, steps: int, batch_size: int) -> dict[str, float]:
    """Train `steps` steps with one loss; returns its timing and peak memory."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from copyflow.trainer.lora import _batches, _Encoder, backward_in_slices, lora_config

    settings = Settings()
    location = str(prepare_default_model(settings.model.cache_dir))
    trainer = settings.trainer
    torch.manual_seed(0)
    tokenizer: Any = AutoTokenizer.from_pretrained(location)
    base: Any = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32)
    model: Any = get_peft_model(base, lora_config(trainer))
    model.train()
    encode = _Encoder(tokenizer, settings.model.prompt_version)
    examples = house_examples(steps * batch_size)
    batches = _batches([encode(e) for e in examples], batch_size, 0, torch.device("cpu"))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=trainer.learning_rate
    )

    def step(batch: dict[str, torch.Tensor]) -> float:
        if variant == "copyflow":
            loss = backward_in_slices(model, batch, trainer.step_tokens)
        else:
            plain = model(**batch).loss
            plain.backward()
            loss = float(plain)
        optimizer.step()
        optimizer.zero_grad()
        return loss

    step(batches[0])  # warm-up: first-call allocations and kernel choices
    started = time.perf_counter()
    losses = [step(batch) for batch in batches[1:]]
    seconds = time.perf_counter() - started
    return {
        "seconds_per_step": seconds / len(losses),
        "examples_per_s": len(losses) * batch_size / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "first_loss": losses[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed steps, 1 round")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each variant")
    parser.add_argument("--batch-size", type=int, default=Settings().trainer.batch_size)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    steps, rounds = (3, 1) if args.quick else (args.steps, args.rounds)
    if args.variant:
        print(json.dumps(_child(args.variant, steps + 1, args.batch_size)))
        return
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    for round_number in range(rounds):
        order = VARIANTS if round_number % 2 == 0 else VARIANTS[::-1]
        for name in order:
            done = subprocess.run(
                [sys.executable, "-m", "bench.training_step", "--variant", name,
                 "--steps", str(steps), "--rounds", "1", "--batch-size", str(args.batch_size)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{name}: {runs[name][-1]}", flush=True)
    best = {name: min(r["seconds_per_step"] for r in found) for name, found in runs.items()}
    peak = {name: max(r["peak_rss_mb"] for r in found) for name, found in runs.items()}
    same_loss = abs(runs["full"][0]["first_loss"] - runs["copyflow"][0]["first_loss"]) < 1e-3
    print(
        f"seconds per step of {args.batch_size}: plain {best['full']:.2f}, copyflow "
        f"{best['copyflow']:.2f}; peak RSS {peak['full']:.0f} MB vs {peak['copyflow']:.0f} MB"
    )
    report(
        {
            "bench": "training_step",
            "batch_size": args.batch_size,
            "steps": steps,
            "rounds": rounds,
            "seconds_per_step": best,
            "peak_rss_mb": peak,
            "same_loss": same_loss,
            "ratio": best["full"] / best["copyflow"],  # steps/s of ours over the baseline's
            "memory_ratio": peak["copyflow"] / peak["full"],
        },
        args.output,
    )


if __name__ == "__main__":
    main()
