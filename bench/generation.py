"""Generation throughput: copyflow's worker pool against the naive path, side by side.

(a) naive: one transformers ``pipeline("text-generation")`` call per product, with the same
    prompt, model, dtype and greedy decoding, as a typical integration writes it;
(b) copyflow: the same products through the worker pool (one process per device slot,
    micro-batches grouped by prompt length, shared prompt prefix computed once per batch).

Prints products/s and tokens/s for both, the ratio, how many greedy outputs are identical, and
peak memory; on a GPU it also runs the pool at larger batch sizes. The last line is one JSON
object.

    python -m bench.generation [--quick] [--products 64] [--batch-sizes 64] [--dtype D] [--output F]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import torch
from transformers import pipeline

from bench.common import myntra_products, peak_rss_mb, report
from consumer.pool import WorkerPool, resolve_devices
from plugins.generators import GenerationRequest, GenerationResult
from plugins.generators.hf import TransformersSpec
from plugins.generators.smollm2 import prepare_default_model
from schemas import Settings


def run_naive(
    spec: TransformersSpec, requests: list[GenerationRequest], device: str
) -> tuple[list[str], float, int]:
    ours = spec.build("cpu")  # only to render the identical prompts and count tokens
    prompts = [ours.render(r) for r in requests]
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec.dtype]
    generate: Any = pipeline("text-generation", model=spec.location, device=device, dtype=dtype)
    texts = []
    started = time.perf_counter()
    for prompt in prompts:
        out = generate(
            prompt, max_new_tokens=spec.max_new_tokens, do_sample=False, return_full_text=False
        )
        texts.append(out[0]["generated_text"].strip())
    elapsed = time.perf_counter() - started
    tokens = sum(len(ours.tokenizer(t, add_special_tokens=False).input_ids) for t in texts)
    return texts, elapsed, tokens


async def run_pool(
    spec: TransformersSpec,
    devices: list[str],
    requests: list[GenerationRequest],
    batch_size: int,
) -> tuple[list[Any], float, float]:
    pool = WorkerPool(
        spec,
        devices,
        max_batch=batch_size,
        max_wait_s=0.05,
        capacity=max(len(requests), batch_size),
    )
    started = time.perf_counter()
    await pool.start()
    load_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        results = await pool.generate(requests)
        return results, time.perf_counter() - started, load_s
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 products: a short run")
    parser.add_argument("--products", type=int, default=64)
    parser.add_argument(
        "--batch-sizes", default=None, help="comma list; default 64 on CPU, 64,128,256,512 on a GPU"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--devices", default="auto", help="pool devices, as pool.devices")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        help="for both paths; default float32 on CPU, bfloat16 on a GPU",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    cuda = torch.cuda.is_available() and args.devices != "cpu"
    devices = resolve_devices(args.devices)
    count = 16 if args.quick else args.products
    batch_sizes = [
        int(b) for b in (args.batch_sizes or ("64,128,256,512" if cuda else "64")).split(",")
    ]
    dtype = args.dtype or ("bfloat16" if cuda else "float32")
    spec = TransformersSpec(
        location=str(prepare_default_model(Settings().model.cache_dir)),
        prompt_version="v1",
        dtype=dtype,
        max_new_tokens=args.max_new_tokens,
        batch_size=max(batch_sizes),
    )
    products = myntra_products(max(count, *batch_sizes) if cuda else count)
    requests = [GenerationRequest(p, "default") for p in products]

    naive_texts, naive_s, naive_tokens = run_naive(spec, requests[:count], devices[0])
    naive_rate = count / naive_s
    figures: dict[str, Any] = {
        "benchmark": "generation",
        "device": "cuda" if cuda else "cpu",
        "devices": devices,
        "dtype": dtype,
        "products": count,
        "max_new_tokens": args.max_new_tokens,
        "naive_products_per_s": round(naive_rate, 3),
        "naive_tokens_per_s": round(naive_tokens / naive_s, 1),
        "by_batch_size": {},
    }
    print(f"naive            {naive_rate:8.2f} products/s  {naive_tokens / naive_s:9.1f} tokens/s")
    for batch_size in batch_sizes:
        batch = requests[: max(count, batch_size)] if cuda else requests[:count]
        results, pool_s, load_s = asyncio.run(run_pool(spec, devices, batch, batch_size))
        generated = [r for r in results if isinstance(r, GenerationResult)]
        rate = len(batch) / pool_s
        identical = sum(
            a == r.raw_text
            for a, r in zip(naive_texts, results, strict=False)
            if isinstance(r, GenerationResult)
        )
        figures["by_batch_size"][str(batch_size)] = {
            "products": len(batch),
            "products_per_s": round(rate, 3),
            "tokens_per_s": round(sum(r.new_tokens for r in generated) / pool_s, 1),
            "ratio": round(rate / naive_rate, 2),
            "identical_outputs": identical,
            "failed": len(results) - len(generated),
            "pool_start_s": round(load_s, 1),
        }
        print(
            f"copyflow b={batch_size:<4} {rate:8.2f} products/s  "
            f"{figures['by_batch_size'][str(batch_size)]['tokens_per_s']:9.1f} tokens/s  "
            f"ratio {rate / naive_rate:6.2f}x  identical {identical}/{count}"
        )
    first = figures["by_batch_size"][str(batch_sizes[0])]
    figures["ratio"] = first["ratio"]
    figures["identical_outputs"] = first["identical_outputs"]
    figures["peak_rss_mb_main"] = round(peak_rss_mb(), 1)
    figures["peak_rss_mb_largest_worker"] = round(peak_rss_mb(children=True), 1)
    if cuda:
        figures["peak_gpu_mb_naive"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    report(figures, args.output)


if __name__ == "__main__":
    main()
