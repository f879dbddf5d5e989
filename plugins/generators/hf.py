"""The built-in generator: a transformers causal LM, batched greedy generation, strict parsing."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from plugins.generators.base import MANIFEST, GenerationRequest, GenerationResult
from plugins.generators.parsing import ParseError, parse_copy
from plugins.generators.prompts import PromptTemplate
from schemas import ModelInfo

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        # bf16 pays on GPUs and on CPUs with AMX; plain AVX2 CPUs run it slower than fp32.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


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


class TransformersGenerator:
    """Loads a causal LM once and generates for batches of requests (left padding, greedy)."""

    def __init__(
        self,
        location: str,
        prompt: PromptTemplate,
        *,
        name: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 80,
        max_input_tokens: int = 512,
        batch_size: int = 8,
    ) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
        self.tokenizer: Any = AutoTokenizer.from_pretrained(location)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model: Any = AutoModelForCausalLM.from_pretrained(location, dtype=self.dtype)
        self.model: Any = model.to(self.device).eval()
        self._info = ModelInfo(
            base=name or location,
            revision=model_revision(location),
            prompt_version=prompt.version,
        )
        log.info("loaded model %s on %s as %s", location, self.device, self.dtype)

    @property
    def model_info(self) -> ModelInfo:
        return self._info

    def render(self, request: GenerationRequest) -> str:
        messages = self.prompt.messages(request.product, request.channel)
        text: str = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return text

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results: list[GenerationResult] = []
        for start in range(0, len(requests), self.batch_size):
            results.extend(self._generate_batch(requests[start : start + self.batch_size]))
        return results

    def _generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        prompts = [self.render(request) for request in requests]
        encoded = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_input_tokens,
            add_special_tokens=False,
        ).to(self.device)
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        prompt_len = encoded["input_ids"].shape[1]
        prompt_tokens = encoded["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, n_prompt in zip(output, prompt_tokens, strict=True):
            new = row[prompt_len:]
            new_tokens = int((new != self.tokenizer.pad_token_id).sum())
            text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            results.append(_parsed(text, int(n_prompt), new_tokens))
        return results


def _parsed(text: str, prompt_tokens: int, new_tokens: int) -> GenerationResult:
    try:
        copy = parse_copy(text)
    except ParseError as exc:
        return GenerationResult(text, None, None, str(exc), prompt_tokens, new_tokens)
    return GenerationResult(text, copy.title, copy.description, None, prompt_tokens, new_tokens)
