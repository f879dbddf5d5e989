"""Which dtype a CPU generates and trains in, by what the CPU has.

bfloat16 halves the weights' bytes but changes some greedy outputs, so ``dtype=auto`` takes it
only on CPUs with AMX tiles, where it pays several times over. Measured with the workers' path
(oneDNN, packed weights), one of the default model's MLP layers (576 -> 1536), 32 rows:

- a 2-core Intel Xeon with AMX: 3.5-5.1x as fast in bfloat16; whole generation and the judge's
  figures: see the README's Generation section;
- a 2-core AMD EPYC (Zen 4: AVX-512 BF16, no AMX): 1.6-1.9x the layer, but only 1.15-1.3x
  whole generation, and 14 of 32 greedy outputs changed: not worth it, float32;
- CPUs without BF16 instructions: bfloat16 several times slower.

A timing at start-up decided this before; on a busy machine it measured an AMX CPU below its
bar, so two workers of one fleet could choose differently (and miss each other's cache). The
CPU's features give every worker on one kind of CPU the same answer.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import torch

from copyflow.plugins.generators import packing

log = logging.getLogger(__name__)


def has_amx() -> bool:
    """Whether this CPU has AMX tiles that this process may use (Linux grants them on
    request, which ``_init_amx`` makes)."""
    supported = getattr(torch.cpu, "_is_amx_tile_supported", None)
    init = getattr(torch.cpu, "_init_amx", None)
    return bool(supported is not None and supported() and (init is None or init()))


@lru_cache(maxsize=1)
def auto_cpu_dtype() -> torch.dtype:
    """dtype=auto on a CPU: bfloat16 where AMX multiplies it (and oneDNN has its kernels),
    else float32."""
    cpu = torch.device("cpu")
    amx = has_amx()
    chosen = torch.bfloat16 if amx and packing.available(cpu, torch.bfloat16) else torch.float32
    log.info("dtype auto on this CPU: %s (AMX tiles: %s)", chosen, "yes" if amx else "no")
    return chosen
