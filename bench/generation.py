"""Generation throughput: copyflow's generator against the naive path, side by side.

(a) naive: one transformers ``pipeline("text-generation")`` call per product, the same prompt,
    model and greedy decoding, as a typical integration would write it;
(b) copyflow: the same products through copyflow's batched generator.

Prints products/s and tokens/s for both, their ratio, peak memory, and whether the greedy
outputs are identical; the last line is one JSON object.

    python bench/generation.py [--quick] [--products 64] [--output results.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from transformers import pipeline

from bench.common import myntra_products, peak_rss_mb, report
from plugins.generators import GenerationRequest, get_prompt
from plugins.generators.hf import TransformersGenerator
from plugins.generators.smollm2 import prepare_default_model
from schemas import Settings


def run_naive(location: str, prompts: list[str], max_new_tokens: int) -> tuple[list[str], float]:
    generate: Any = pipeline("text-generation", model=location, device="cpu", dtype=torch.float32)
    texts = []
    started = time.perf_counter()
    for prompt in prompts:
        out = generate(
            prompt, max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False
        )
        texts.append(out[0]["generated_text"].strip())
    return texts, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 products, a short run")
    parser.add_argument("--products", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    count = 8 if args.quick else args.products

    location = str(prepare_default_model(Settings().model.cache_dir))
    products = myntra_products(count)
    requests = [GenerationRequest(p, "default") for p in products]

    ours = TransformersGenerator(
        location,
        get_prompt("v1"),
        device="cpu",
        dtype="float32",
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
    )
    prompts = [ours.render(r) for r in requests]

    naive_texts, naive_s = run_naive(location, prompts, args.max_new_tokens)
    naive_tokens = sum(len(ours.tokenizer(t).input_ids) for t in naive_texts)

    started = time.perf_counter()
    results = ours.generate(requests)
    ours_s = time.perf_counter() - started
    ours_tokens = sum(r.new_tokens for r in results)

    identical = sum(a == r.raw_text for a, r in zip(naive_texts, results, strict=True))
    figures = {
        "benchmark": "generation",
        "device": "cpu",
        "products": count,
        "batch_size": args.batch_size,
        "naive_products_per_s": round(count / naive_s, 3),
        "naive_tokens_per_s": round(naive_tokens / naive_s, 1),
        "copyflow_products_per_s": round(count / ours_s, 3),
        "copyflow_tokens_per_s": round(ours_tokens / ours_s, 1),
        "ratio": round(naive_s / ours_s, 2),
        "identical_outputs": identical,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(
        f"naive    {figures['naive_products_per_s']:8.2f} products/s  "
        f"{figures['naive_tokens_per_s']:8.1f} tokens/s"
    )
    print(
        f"copyflow {figures['copyflow_products_per_s']:8.2f} products/s  "
        f"{figures['copyflow_tokens_per_s']:8.1f} tokens/s  ratio {figures['ratio']}x  "
        f"identical {identical}/{count}"
    )
    report(figures, args.output)


if __name__ == "__main__":
    main()
