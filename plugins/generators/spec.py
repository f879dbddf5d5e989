"""What a generator is built from, light enough for the process that only plans the pool:
torch, but not transformers (which the generator processes import when they build)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from copyflow.plugins.generators.base import MANIFEST
from copyflow.plugins.generators.cpu import auto_cpu_dtype

if TYPE_CHECKING:
    from copyflow.plugins.generators.hf import TransformersGenerator

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The training dtype of the base model: auto as generation's (bfloat16 on a GPU; on a CPU
    bfloat16 where it has AMX tiles, else float32)."""
    return DTYPES[generation_dtype(dtype, device)]


def generation_dtype(dtype: str, device: str | torch.device) -> str:
    """The dtype a generator on device runs in, by name: auto is bfloat16 on a GPU and, on a
    CPU, whichever this CPU runs clearly faster (plugins.generators.cpu)."""
    if dtype != "auto":
        return dtype
    resolved = resolve_device(str(device))
    chosen = torch.bfloat16 if resolved.type == "cuda" else auto_cpu_dtype()
    return str(chosen).removeprefix("torch.")


def model_revision(location: str) -> str:
    """A stable revision for a model: the manifest's, else a digest of its config and files."""
    path = Path(location)
    if not path.is_dir():
        return "hub"
    manifest = path / MANIFEST
    if manifest.is_file():
        return str(json.loads(manifest.read_text())["revision"])
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:12]


def decoding_parameters(
    dtype: str,
    max_new_tokens: int,
    max_input_tokens: int,
    max_title_tokens: int,
    max_description_tokens: int,
) -> str:
    """The decoding parameters that shape an output, as ModelInfo.decoding names them."""
    return (
        f"greedy;dtype={dtype};max_new_tokens={max_new_tokens};"
        f"max_input_tokens={max_input_tokens};max_title_tokens={max_title_tokens};"
        f"max_description_tokens={max_description_tokens}"
    )


@dataclass(frozen=True)
class TransformersSpec:
    """Everything needed to build the generator again in another process (picklable)."""

    location: str
    prompt_version: str
    name: str | None = None
    dtype: str = "auto"
    max_new_tokens: int = 140
    max_input_tokens: int = 1024
    batch_size: int = 8
    adapter: str | None = None  # a LoRA adapter folder (peft) to apply to the model
    adapter_version: str | None = None
    max_title_tokens: int = 40  # the framed prompts' budgets (the overall cap still applies)
    max_description_tokens: int = 90

    def build(self, device: str) -> TransformersGenerator:
        from copyflow.plugins.generators.hf import TransformersGenerator
        from copyflow.plugins.generators.prompts import get_prompt

        return TransformersGenerator(
            self.location,
            get_prompt(self.prompt_version),
            name=self.name,
            device=device,
            dtype=self.dtype,
            max_new_tokens=self.max_new_tokens,
            max_input_tokens=self.max_input_tokens,
            batch_size=self.batch_size,
            adapter=self.adapter,
            adapter_version=self.adapter_version,
            max_title_tokens=self.max_title_tokens,
            max_description_tokens=self.max_description_tokens,
        )
