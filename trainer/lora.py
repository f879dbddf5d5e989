"""LoRA fine-tuning (peft) of the generator's base model on examples, with the generator's own
prompt, so that what is learnt is what the workers will be asked."""

from __future__ import annotations

import logging
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from copyflow.plugins.generators import get_prompt
from copyflow.plugins.generators.spec import resolve_device, resolve_dtype
from copyflow.schemas.settings import TrainerSettings
from copyflow.trainer.examples import Example

log = logging.getLogger(__name__)


def answer(example: Example) -> str:
    """The answer the prompt asks for, as the model should write it."""
    return f"TITLE: {example.title}\nDESCRIPTION: {example.description}"


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # per optimizer step
    holdout_losses: list[float] = field(default_factory=list)  # per epoch
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    examples: int = 0
    device: str = "cpu"
    dtype: str = "float32"


class _Encoder:
    """Prompt + answer token ids, with labels only on the answer (the prompt is not learnt)."""

    def __init__(self, tokenizer: Any, prompt_version: str, max_tokens: int = 1024) -> None:
        self.tokenizer = tokenizer
        self.prompt = get_prompt(prompt_version)
        self.max_tokens = max_tokens

    def __call__(self, example: Example) -> tuple[list[int], list[int]]:
        messages = self.prompt.messages(example.product, example.channel)
        prompt = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
        answer_ids = self.tokenizer(answer(example), add_special_tokens=False).input_ids
        answer_ids = [*answer_ids, self.tokenizer.eos_token_id]
        ids = (prompt_ids + answer_ids)[-self.max_tokens :]
        labels = ([-100] * len(prompt_ids) + answer_ids)[-self.max_tokens :]
        return ids, labels


def _batches(
    encoded: Sequence[tuple[list[int], list[int]]], size: int, pad: int, device: torch.device
) -> list[dict[str, torch.Tensor]]:
    batches = []
    for start in range(0, len(encoded), size):
        chunk = encoded[start : start + size]
        width = max(len(ids) for ids, _ in chunk)
        batches.append(
            {
                "input_ids": torch.tensor(
                    [ids + [pad] * (width - len(ids)) for ids, _ in chunk], device=device
                ),
                "attention_mask": torch.tensor(
                    [[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk],
                    device=device,
                ),
                "labels": torch.tensor(
                    [labels + [-100] * (width - len(labels)) for _, labels in chunk],
                    device=device,
                ),
            }
        )
    return batches


def lora_config(settings: TrainerSettings) -> Any:
    """peft's LoraConfig for the trainer's settings."""
    from peft import LoraConfig  # the trainer's dependency, not the worker's

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )


def train_lora(
    model_location: str,
    prompt_version: str,
    train: Sequence[Example],
    holdout: Sequence[Example],
    settings: TrainerSettings,
    output: Path,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Train a LoRA adapter and save it (safetensors) to output. progress(examples, total,
    loss) is called after each optimizer step with the examples trained on so far (each
    epoch counts them again) out of the run's total."""
    from peft import get_peft_model  # the trainer's dependency, not the worker's

    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    tokenizer: Any = AutoTokenizer.from_pretrained(model_location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base: Any = AutoModelForCausalLM.from_pretrained(model_location, dtype=dtype)
    model: Any = get_peft_model(base, lora_config(settings)).to(device)
    encode = _Encoder(tokenizer, prompt_version)
    # Similar lengths together: less padding per batch; the batch order is shuffled instead.
    encoded = sorted((encode(e) for e in train), key=lambda pair: len(pair[0]))
    pad = tokenizer.pad_token_id
    batches = _batches(encoded, settings.batch_size, pad, device)
    held = _batches([encode(e) for e in holdout], settings.batch_size, pad, device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate
    )
    steps = len(batches) * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1 - step / max(1, steps))
    )
    result = TrainResult(examples=len(train), device=str(device), dtype=str(dtype).split(".")[-1])
    order = random.Random(settings.seed)
    step = seen = 0
    for _ in range(settings.epochs):
        model.train()
        order.shuffle(batches)
        for batch in batches:
            loss = backward_in_slices(model, batch, settings.step_tokens)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            result.losses.append(loss)
            seen += batch["input_ids"].shape[0]
            if progress is not None:
                progress(seen, len(train) * settings.epochs, result.losses[-1])
        result.holdout_losses.append(_mean_loss(model, held))
    model.save_pretrained(str(output), safe_serialization=True)
    result.seconds = time.perf_counter() - started
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def shared_prefix(input_ids: torch.Tensor, labels: torch.Tensor) -> int:
    """How many leading tokens every row of a batch shares, stopping before the first
    labelled position (a row's answer is never part of it). 0 for a single row."""
    if input_ids.shape[0] < 2:
        return 0
    same = (input_ids == input_ids[:1]).all(dim=0)
    differs = (~same).nonzero()
    length = int(differs[0]) if len(differs) else input_ids.shape[1]
    labelled = (labels != -100).any(dim=0).nonzero()
    first_label = int(labelled[0]) if len(labelled) else input_ids.shape[1]
    # Position t's output predicts token t + 1: the prefix ends before the first label's
    # predecessor, so every predicting position is in the rows' own part.
    return max(0, min(length, first_label - 1))


def answer_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The causal LM loss on the answer's tokens, as ``model(**batch).loss`` computes it, with
    two savings that change nothing in the result or its gradients:

    - the prompt prefix that every row shares (the instructions and examples, most of each
      row) is computed once for the batch and its keys and values repeated for each row;
    - the output layer is applied only where a label is: the prompt's positions need no
      logits, and over a 49k-token vocabulary theirs were a large part of a step.
    """
    causal = model.get_base_model()  # the LoRA layers are in it, where peft injected them
    prefix = shared_prefix(batch["input_ids"], batch["labels"])
    return _rows_loss(causal, batch, prefix, _prefix_states(causal, batch["input_ids"], prefix))


def backward_in_slices(model: Any, batch: dict[str, torch.Tensor], step_tokens: int) -> float:
    """Backpropagates the batch's answer_loss and returns it. The shared prefix is computed
    once; the rows' own parts go through in slices of at most step_tokens tokens (one row at
    least), each slice's loss weighted by its share of the batch's answer tokens, so the
    gradients add up to the whole batch's while only one slice's activations (and the
    prefix's) are held at a time: a step's memory stays bounded whatever the rows' lengths."""
    causal = model.get_base_model()
    input_ids, labels = batch["input_ids"], batch["labels"]
    rows, width = input_ids.shape
    prefix = shared_prefix(input_ids, labels)
    states = _prefix_states(causal, input_ids, prefix)
    per_slice = max(1, step_tokens // max(1, width - prefix))
    starts = range(0, rows, per_slice)
    total = int((labels[:, 1:] != -100).sum())
    loss = 0.0
    for start in starts:
        part = {name: value[start : start + per_slice] for name, value in batch.items()}
        used = int(part["attention_mask"].sum(dim=1).max())  # rows are padded on the right
        part = {name: value[:, :used] for name, value in part.items()}
        answers = int((part["labels"][:, 1:] != -100).sum())
        if answers == 0:
            continue
        weighted = _rows_loss(causal, part, prefix, states) * (answers / total)
        # The prefix's graph serves every slice: kept until the last one has gone back.
        weighted.backward(retain_graph=bool(prefix) and start != starts[-1])
        loss += float(weighted.detach())
    return loss


def _prefix_states(
    causal: Any, input_ids: torch.Tensor, prefix: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values for the shared prefix, computed on one row."""
    if prefix == 0:
        return []
    cache = causal.model(input_ids=input_ids[:1, :prefix], use_cache=True).past_key_values
    return [(layer.keys, layer.values) for layer in cache.layers]


def _rows_loss(
    causal: Any,
    batch: dict[str, torch.Tensor],
    prefix: int,
    states: list[tuple[torch.Tensor, torch.Tensor]],
) -> torch.Tensor:
    """The answer loss of the batch's rows, whose first prefix tokens have the given keys and
    values (states), so only each row's own part is computed."""
    input_ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    rows = input_ids.shape[0]
    if prefix == 0:
        hidden = causal.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    else:
        cache = DynamicCache(config=causal.config)
        for layer, (keys, values) in enumerate(states):
            cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), layer)
        positions = torch.arange(prefix, input_ids.shape[1], device=input_ids.device)
        hidden = causal.model(
            input_ids=input_ids[:, prefix:],
            attention_mask=mask,
            past_key_values=cache,
            position_ids=positions.expand(rows, -1),
            use_cache=False,
        ).last_hidden_state
    targets = labels[:, prefix + 1 :]  # the output at position t predicts token t + 1
    kept = targets != -100
    logits = causal.lm_head(hidden[:, :-1][kept]).float()
    return torch.nn.functional.cross_entropy(logits, targets[kept])


def _mean_loss(model: Any, batches: Sequence[dict[str, torch.Tensor]]) -> float:
    if not batches:
        return float("nan")
    model.eval()
    with torch.inference_mode():
        losses = [float(answer_loss(model, batch)) for batch in batches]
    return sum(losses) / len(losses)
