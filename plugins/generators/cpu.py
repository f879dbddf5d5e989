"""Which dtype a CPU generates in: measured on the CPU itself, once per process.

bfloat16 halves the weights' bytes and, on CPUs with bfloat16 instructions (AVX-512 BF16, and
AMX tiles far more so), doubles or better the matrix products' speed; but it changes some greedy
outputs. So ``dtype=auto`` takes it only where it clearly pays: the model's kind of linear
layer, run as workers run it (oneDNN, weights packed once), must be at least BF16_MIN_SPEEDUP
times as fast in bfloat16 as in float32 (measured at start-up, in well under a second). The
choice is made in the process that builds the generator spec and travels with it, so every
worker process and the cache key agree on it.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

import torch

from copyflow.plugins.generators import packing

log = logging.getLogger(__name__)

# Measured on a 2-core AMD EPYC (Zen 4: AVX-512 BF16, no AMX): this layer ran 1.6-1.9x as fast
# in bfloat16, yet whole generation only 1.15-1.3x, and 14 of 32 greedy outputs changed; that
# is not worth the change. AMX's tiles multiply bfloat16 several times faster than that.
BF16_MIN_SPEEDUP = 2.5

# One of the default model's MLP layers (576 -> 1536) for a decoding step of 32 rows, the
# shape most of a generation's time is spent in.
_ROWS, _IN, _OUT = 32, 576, 1536


def _layer(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(_ROWS, _IN, generator=generator).to(dtype)
    weight = torch.randn(_OUT, _IN, generator=generator).to(dtype)
    return rows, torch.ops.mkldnn._reorder_linear_weight(weight, _ROWS)


def _seconds(layer: tuple[torch.Tensor, torch.Tensor], calls: int) -> float:
    rows, packed = layer
    started = time.perf_counter()
    for _ in range(calls):
        torch.ops.mkldnn._linear_pointwise(rows, packed, None, "none", [], "")
    return time.perf_counter() - started


@lru_cache(maxsize=1)
def bf16_speedup(rounds: int = 7, calls: int = 50) -> float:
    """How many times as fast this CPU runs the model's linear layers in bfloat16 as in
    float32 (0.0 where oneDNN has no bfloat16 kernels for it)."""
    cpu = torch.device("cpu")
    if not (packing.available(cpu, torch.float32) and packing.available(cpu, torch.bfloat16)):
        return 0.0
    layers = {dtype: _layer(dtype) for dtype in (torch.float32, torch.bfloat16)}
    best = dict.fromkeys(layers, float("inf"))
    with torch.inference_mode():
        for layer in layers.values():
            _seconds(layer, 5)  # oneDNN builds its kernels on first use
        # Interleaved, best of each: a busy neighbour slows both alike instead of one.
        for _ in range(rounds):
            for dtype, layer in layers.items():
                best[dtype] = min(best[dtype], _seconds(layer, calls))
    speedup = best[torch.float32] / best[torch.bfloat16]
    log.info("bfloat16 runs the model's layers %.2fx as fast as float32 here", speedup)
    return speedup


def auto_cpu_dtype() -> torch.dtype:
    """dtype=auto on a CPU: bfloat16 where it clearly pays, else float32."""
    return torch.bfloat16 if bf16_speedup() >= BF16_MIN_SPEEDUP else torch.float32
