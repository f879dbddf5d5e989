"""Generation throughput: copyflow's worker pool against the naive path, side by side.

(a) naive: one transformers ``pipeline("text-generation")`` call per product, with the same
    prompt, model and greedy decoding, in transformers' default dtype (float32 on a CPU), as a
    typical integration writes it;
(b) copyflow: the same products through the worker pool (one process per device slot,
    micro-batches grouped by prompt length, shared prompt prefix computed once per batch), in
    the dtype a worker chooses (``model.dtype = auto``: on a CPU, bfloat16 only where this CPU
    runs it clearly faster). Where that is not float32, the pool also runs in float32, so the
    kernels' share and the dtype's share of the ratio show apart.

Prints products/s and tokens/s for both, the ratio, how many greedy outputs are identical to
the naive path's, and peak memory; on a GPU it also runs the pool at larger batch sizes.

Then, side by side in one pool: a tenant served by the base model with the workers' prompt
(v3), and the same tenant served by a trained LoRA adapter with its own short prompt (s1), with
the workers' cap on new tokens (model.max_new_tokens) and with --max-new-tokens.
The adapter is --adapter (a folder trained with --adapter-prompt), else one trained here on
--adapter-examples simulated house-style edits (bench.style's data). The last line is one JSON
object.

    python -m bench.generation [--quick] [--products 64] [--batch-sizes 64] [--dtype D]
        [--naive-dtype D]
        [--adapter DIR] [--adapter-prompt s1] [--adapter-examples 200] [--no-adapter] [--output F]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import pipeline

from bench.common import myntra_products, peak_rss_mb, report
from copyflow.consumer.pool import WorkerPool, resolve_devices
from copyflow.plugins.generators import GenerationRequest, GenerationResult
from copyflow.plugins.generators.smollm2 import prepare_default_model
from copyflow.plugins.generators.spec import DTYPES, TransformersSpec, generation_dtype
from copyflow.schemas import Settings


def run_naive(
    spec: TransformersSpec, requests: list[GenerationRequest], device: str, dtype: str
) -> tuple[list[str], float, int]:
    ours = replace(spec, dtype=dtype).build("cpu")  # only to render the prompts, count tokens
    prompts = [ours.render(r) for r in requests]
    generate: Any = pipeline(
        "text-generation", model=spec.location, device=device, dtype=DTYPES[dtype]
    )
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


def pool_row(
    spec: TransformersSpec,
    devices: list[str],
    batch: list[GenerationRequest],
    batch_size: int,
    naive_texts: list[str],
    naive_rate: float,
) -> dict[str, Any]:
    """The pool's figures for one batch size and dtype, against the naive path's."""
    results, pool_s, load_s = asyncio.run(run_pool(spec, devices, batch, batch_size))
    generated = [r for r in results if isinstance(r, GenerationResult)]
    rate = len(batch) / pool_s
    identical = sum(
        a == r.raw_text
        for a, r in zip(naive_texts, results, strict=False)
        if isinstance(r, GenerationResult)
    )
    row = {
        "dtype": spec.dtype,
        "products": len(batch),
        "products_per_s": round(rate, 3),
        "tokens_per_s": round(sum(r.new_tokens for r in generated) / pool_s, 1),
        "ratio": round(rate / naive_rate, 2),
        "identical_outputs": identical,
        "failed": len(results) - len(generated),
        "pool_start_s": round(load_s, 1),
    }
    print(
        f"copyflow b={batch_size:<4} {spec.dtype:<9}{rate:8.2f} products/s  "
        f"{row['tokens_per_s']:9.1f} tokens/s  ratio {rate / naive_rate:6.2f}x  "
        f"identical {identical}/{len(naive_texts)}"
    )
    return row


def train_bench_adapter(location: str, prompt: str, examples: int, folder: Path) -> float:
    """A house-style adapter trained with prompt on bench.style's simulated edits (1 epoch);
    returns the seconds it took."""
    from bench.style import house_examples
    from copyflow.schemas import load_settings
    from copyflow.trainer.lora import train_lora

    settings = load_settings().trainer.model_copy(update={"epochs": 1})
    trained = train_lora(location, prompt, house_examples(examples), [], settings, folder)
    return trained.seconds


async def run_prompts(
    spec: TransformersSpec,
    devices: list[str],
    products: list[Any],
    adapter: Path,
    adapter_prompt: str,
    rounds: int = 2,
) -> dict[str, Any]:
    """One pool, the same products: the base model with the pool's prompt against the adapter
    with its own prompt, alternated over rounds so drift in the machine's speed hits both."""
    pool = WorkerPool(spec, devices, max_batch=spec.batch_size, max_wait_s=0.05, capacity=1024)
    await pool.start()
    seconds = {"base_prompt": 0.0, "adapter_prompt": 0.0}
    made: dict[str, list[Any]] = {"base_prompt": [], "adapter_prompt": []}
    try:
        await pool.load_adapter("bench_adapter", str(adapter), adapter_prompt)
        for _ in range(rounds):
            for kind, name in (("base_prompt", None), ("adapter_prompt", "bench_adapter")):
                requests = [GenerationRequest(p, "default", name) for p in products]
                started = time.perf_counter()
                made[kind] = await pool.generate(requests)
                seconds[kind] += time.perf_counter() - started
    finally:
        await pool.close()
    figures: dict[str, Any] = {"rounds": rounds, "products": len(products)}
    for kind, results in made.items():
        generated = [r for r in results if isinstance(r, GenerationResult)]
        figures[kind] = {
            "prompt_version": spec.prompt_version if kind == "base_prompt" else adapter_prompt,
            "products_per_s": round(rounds * len(products) / seconds[kind], 3),
            "mean_prompt_tokens": round(
                sum(r.prompt_tokens for r in generated) / max(1, len(generated)), 1
            ),
            "mean_new_tokens": round(
                sum(r.new_tokens for r in generated) / max(1, len(generated)), 1
            ),
            "failed": len(results) - len(generated),
        }
    figures["ratio"] = round(seconds["base_prompt"] / seconds["adapter_prompt"], 2)
    return figures


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
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="the pool's, resolved as a worker resolves model.dtype (default auto)",
    )
    parser.add_argument(
        "--naive-dtype",
        choices=["float32", "bfloat16"],
        help="the naive path's; default transformers' own: float32 on a CPU (bfloat16 on a GPU)",
    )
    parser.add_argument("--adapter", type=Path, help="a trained adapter folder to serve")
    parser.add_argument("--adapter-prompt", default="s1", help="the prompt it was trained with")
    parser.add_argument(
        "--adapter-examples", type=int, default=200, help="edits to train one on when no --adapter"
    )
    parser.add_argument("--no-adapter", action="store_true", help="skip the prompt comparison")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    cuda = torch.cuda.is_available() and args.devices != "cpu"
    devices = resolve_devices(args.devices)
    count = 16 if args.quick else args.products
    batch_sizes = [
        int(b) for b in (args.batch_sizes or ("64,128,256,512" if cuda else "64")).split(",")
    ]
    dtype = generation_dtype(args.dtype, devices[0])
    naive_dtype = args.naive_dtype or ("bfloat16" if cuda else "float32")
    spec = TransformersSpec(
        location=str(prepare_default_model(Settings().model.cache_dir)),
        prompt_version="v1",
        dtype=dtype,
        max_new_tokens=args.max_new_tokens,
        batch_size=max(batch_sizes),
    )
    products = myntra_products(max(count, *batch_sizes) if cuda else count)
    requests = [GenerationRequest(p, "default") for p in products]

    naive_texts, naive_s, naive_tokens = run_naive(spec, requests[:count], devices[0], naive_dtype)
    naive_rate = count / naive_s
    figures: dict[str, Any] = {
        "benchmark": "generation",
        "device": "cuda" if cuda else "cpu",
        "devices": devices,
        "dtype": dtype,
        "naive_dtype": naive_dtype,
        "products": count,
        "max_new_tokens": args.max_new_tokens,
        "naive_products_per_s": round(naive_rate, 3),
        "naive_tokens_per_s": round(naive_tokens / naive_s, 1),
        "by_batch_size": {},
    }
    print(
        f"naive {naive_dtype:<9}  {naive_rate:8.2f} products/s  "
        f"{naive_tokens / naive_s:9.1f} tokens/s"
    )
    for batch_size in batch_sizes:
        batch = requests[: max(count, batch_size)] if cuda else requests[:count]
        figures["by_batch_size"][str(batch_size)] = pool_row(
            spec, devices, batch, batch_size, naive_texts, naive_rate
        )
    if dtype != "float32" and not cuda:
        # The same pool in float32: how much of the ratio is the kernels', how much the dtype's.
        figures["float32_pool"] = pool_row(
            replace(spec, dtype="float32"),
            devices,
            requests[:count],
            batch_sizes[0],
            naive_texts,
            naive_rate,
        )
    first = figures["by_batch_size"][str(batch_sizes[0])]
    figures["ratio"] = first["ratio"]
    figures["identical_outputs"] = first["identical_outputs"]
    if not args.no_adapter:
        figures["adapter"] = compare_prompts(args, spec, devices, products[:count])
    figures["peak_rss_mb_main"] = round(peak_rss_mb(), 1)
    figures["peak_rss_mb_largest_worker"] = round(peak_rss_mb(children=True), 1)
    if cuda:
        figures["peak_gpu_mb_naive"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    report(figures, args.output)


def compare_prompts(
    args: argparse.Namespace, spec: TransformersSpec, devices: list[str], products: list[Any]
) -> dict[str, Any]:
    """The tenant's products/s through its adapter and short prompt against the base prompt,
    with the workers' cap on new tokens (model.max_new_tokens: what serving costs) and, where
    it differs, with this run's --max-new-tokens."""
    served_cap = Settings().model.max_new_tokens
    caps = dict.fromkeys([served_cap, args.max_new_tokens])
    with tempfile.TemporaryDirectory() as folder:
        adapter, train_s = args.adapter, None
        if adapter is None:
            examples = 40 if args.quick else args.adapter_examples
            print(f"training an adapter on {examples} edits with prompt {args.adapter_prompt}")
            adapter = Path(folder)
            train_s = train_bench_adapter(spec.location, args.adapter_prompt, examples, adapter)
        by_cap = {
            str(cap): asyncio.run(
                run_prompts(
                    replace(spec, prompt_version="v3", max_new_tokens=cap),
                    devices,
                    products,
                    adapter,
                    args.adapter_prompt,
                )
            )
            for cap in caps
        }
    for cap, found in by_cap.items():
        for kind in ("base_prompt", "adapter_prompt"):
            row = found[kind]
            print(
                f"{kind:<15} {row['prompt_version']:<3} {row['products_per_s']:8.2f} products/s  "
                f"prompt {row['mean_prompt_tokens']:6.1f} tokens, {row['mean_new_tokens']:5.1f} "
                f"new (cap {cap})"
            )
        print(
            f"adapter with its own prompt, cap {cap}: ratio {found['ratio']:.2f}x the base prompt"
        )
    return {
        **by_cap[str(served_cap)],
        "max_new_tokens": served_cap,
        "by_max_new_tokens": by_cap,
        "adapter_train_s": None if train_s is None else round(train_s, 1),
    }


if __name__ == "__main__":
    main()
