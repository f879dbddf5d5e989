"""The built-in generator: a transformers causal LM, batched greedy generation, strict parsing."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    LogitsProcessorList,
    StoppingCriteriaList,
)

from copyflow.plugins.generators import decoding, packing
from copyflow.plugins.generators.base import GenerationRequest, GenerationResult
from copyflow.plugins.generators.frame import (
    Frame,
    FrameHook,
    FrameLogits,
    FrameSpec,
    FrameStop,
    frame_spec,
)
from copyflow.plugins.generators.parsing import ParseError, finish_copy, parse_copy
from copyflow.plugins.generators.prompts import PromptTemplate, get_prompt
from copyflow.plugins.generators.spec import (
    DTYPES,
    decoding_parameters,
    generation_dtype,
    model_revision,
    resolve_device,
)
from copyflow.plugins.generators.utf8 import decode_complete
from copyflow.schemas import ModelInfo

log = logging.getLogger(__name__)


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
        max_new_tokens: int = 140,
        max_input_tokens: int = 1024,
        batch_size: int = 8,
        adapter: str | None = None,
        adapter_version: str | None = None,
        max_title_tokens: int = 40,
        max_description_tokens: int = 90,
    ) -> None:
        self.device = resolve_device(device)
        dtype_name = generation_dtype(dtype, self.device)
        self.dtype = DTYPES[dtype_name]
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.max_input_tokens = max_input_tokens
        self.batch_size = batch_size
        self.tokenizer: Any = AutoTokenizer.from_pretrained(location)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._frame_budgets = (max_title_tokens, max_description_tokens)
        self._frame: FrameSpec | None = None  # made when a framed prompt is first used
        if prompt.frame:
            self._frame_spec()  # at load, not in the first batch
        model: Any = AutoModelForCausalLM.from_pretrained(location, dtype=self.dtype)
        revision = model_revision(location)
        if adapter is not None:
            from peft import PeftModel  # only when an adapter is used

            # Merged: generation then costs what the base model costs.
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        self.model: Any = model.to(self.device).eval()
        if packing.available(self.device, self.dtype):
            packing.pack_linear_layers(self.model, rows_hint=batch_size)
        # Our own decoding loop for the model types whose attention it reproduces.
        self._own_loop = decoding.supports(self.model)
        if self._own_loop:
            self.model.set_attn_implementation(decoding.ATTENTION)
        # Adapters loaded unmerged, chosen per request, each with the prompt it was trained on.
        self._served: dict[str, PromptTemplate] = {}
        self._info = ModelInfo(
            base=name or location,
            revision=revision,
            adapter=Path(adapter).name if adapter else None,
            adapter_version=adapter_version if adapter else None,
            prompt_version=prompt.version,
            decoding=decoding_parameters(
                dtype_name,
                max_new_tokens,
                max_input_tokens,
                max_title_tokens,
                max_description_tokens,
            ),
        )
        log.info("loaded model %s on %s as %s", location, self.device, self.dtype)

    @property
    def model_info(self) -> ModelInfo:
        return self._info

    def load_adapter(self, name: str, location: str, prompt_version: str | None = None) -> None:
        """Load a LoRA adapter beside the others, unmerged, so that one batch can mix
        requests for several adapters and the base model. Its requests are asked with
        prompt_version's prompt, the one it was trained with (None: the generator's)."""
        from peft import PeftModel  # only when an adapter is used

        prompt = self.prompt if prompt_version is None else get_prompt(prompt_version)
        if not isinstance(self.model, PeftModel):
            self.model = PeftModel.from_pretrained(self.model, location, adapter_name=name)
        else:
            self.model.load_adapter(location, adapter_name=name)
        self.model = self.model.to(self.device).eval()
        self._served[name] = prompt
        log.info("loaded adapter %s from %s (prompt %s)", name, location, prompt.version)

    def unload_adapter(self, name: str) -> None:
        if name in self._served:
            self.model.delete_adapter(name)
            del self._served[name]

    def prompt_for(self, adapter: str | None) -> PromptTemplate:
        """The prompt a request naming this adapter (None: the base model) is asked with."""
        if adapter is None:
            return self.prompt
        if adapter not in self._served:
            raise ValueError(f"adapter {adapter!r} is not loaded in this worker")
        return self._served[adapter]

    def render(self, request: GenerationRequest) -> str:
        prompt = self.prompt_for(request.adapter)
        messages = prompt.messages(request.product, request.channel)
        text: str = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return text + prompt.answer_prefix

    def _frame_spec(self) -> FrameSpec:
        if self._frame is None:
            eos = {self.tokenizer.eos_token_id}
            self._frame = frame_spec(self.tokenizer, eos, *self._frame_budgets)
        return self._frame

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Generate for any number of requests: requests asked with the same prompt and of
        similar length share a batch."""
        token_ids = [self._token_ids(request) for request in requests]
        results: list[GenerationResult | None] = [None] * len(requests)
        fitting = []
        for index, ids in enumerate(token_ids):
            if len(ids) > self.max_input_tokens:
                results[index] = GenerationResult(
                    "",
                    None,
                    None,
                    f"prompt has {len(ids)} tokens, more than max_input_tokens "
                    f"{self.max_input_tokens}",
                    len(ids),
                    0,
                )
            else:
                fitting.append(index)
        # One prompt per batch: rows asked with different prompts share no prefix to compute
        # once, and each prompt has its own answer frame and invented words.
        by_prompt: dict[str, list[int]] = {}
        for index in sorted(fitting, key=lambda index: len(token_ids[index])):
            version = self.prompt_for(requests[index].adapter).version
            by_prompt.setdefault(version, []).append(index)
        for indices in by_prompt.values():
            prompt = self.prompt_for(requests[indices[0]].adapter)
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                adapters = [requests[i].adapter for i in chunk]
                made = self._generate_batch([token_ids[i] for i in chunk], adapters, prompt)
                for index, result in zip(chunk, made, strict=True):
                    results[index] = result
        return [result for result in results if result is not None]

    def _token_ids(self, request: GenerationRequest) -> list[int]:
        ids: list[int] = self.tokenizer(self.render(request), add_special_tokens=False).input_ids
        return ids

    def _adapter_names(self, adapters: Sequence[str | None]) -> list[str] | None:
        """peft's per-row adapter names, or None when no adapter is served (an adapter that is
        not loaded was refused when its prompt was rendered: prompt_for)."""
        if not self._served:
            return None
        return [adapter or "__base__" for adapter in adapters]

    @contextmanager
    def _routed(self, names: list[str] | None) -> Iterator[list[str] | None]:
        """The per-row adapter names to give the model for a batch. A batch of one adapter (or
        of the base model alone) runs with that adapter active and no names instead: peft's
        per-row routing gathers and scatters the rows at every LoRA layer of every step (3-7%
        of an adapter batch's time, measured on an AMX CPU in bfloat16)."""
        if names is None or len(set(names)) > 1:
            yield names
        elif names[0] == "__base__":
            with self.model.disable_adapter():
                yield None
        else:
            self.model.set_adapter(names[0])  # generation runs under inference_mode
            yield None

    def _generate_batch(
        self,
        token_ids: Sequence[list[int]],
        adapters: Sequence[str | None],
        prompt: PromptTemplate,
    ) -> list[GenerationResult]:
        """One forward batch of one prompt's rows; the prompts' common prefix (instructions
        and example) is computed once per adapter in the batch."""
        prefix = _common_prefix_length(token_ids)
        frames = [Frame(self._frame_spec()) for _ in token_ids] if prompt.frame else None
        with self._routed(self._adapter_names(adapters)) as names:
            if self._own_loop:
                continuations = decoding.greedy(
                    self.model,
                    token_ids,
                    prefix,
                    max_new_tokens=self.max_new_tokens,
                    stop={self.tokenizer.eos_token_id},
                    adapters=names,
                    hook=None if frames is None else FrameHook(frames),
                )
            else:
                continuations = self._generate_with_transformers(token_ids, prefix, names, frames)
        if frames is None:
            return [
                self._result(tokens, len(ids), prompt)
                for tokens, ids in zip(continuations, token_ids, strict=True)
            ]
        return [
            self._framed_result(tokens, frame, len(ids), prompt)
            for tokens, frame, ids in zip(continuations, frames, token_ids, strict=True)
        ]

    def _result(
        self, tokens: list[int], prompt_tokens: int, prompt: PromptTemplate
    ) -> GenerationResult:
        """An unframed answer, parsed strictly, its fields cleaned (parsing.finish_copy)."""
        raw = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        try:
            parsed = parse_copy(decode_complete(self.tokenizer, tokens))
            copy = finish_copy(parsed.title, parsed.description, prompt.invented)
        except ParseError as exc:
            return GenerationResult(raw, None, None, str(exc), prompt_tokens, len(tokens))
        return GenerationResult(raw, copy.title, copy.description, None, prompt_tokens, len(tokens))

    def _framed_result(
        self, tokens: list[int], frame: Frame, prompt_tokens: int, prompt: PromptTemplate
    ) -> GenerationResult:
        """A framed answer: its fields are the tokens the frame put in each, not what the text
        says (a title may hold the word DESCRIPTION), decoded and cleaned."""
        raw = prompt.answer_prefix + self.tokenizer.decode(tokens, skip_special_tokens=True)
        title, description = frame.split(tokens)
        try:
            copy = finish_copy(
                decode_complete(self.tokenizer, title),
                decode_complete(self.tokenizer, description),
                prompt.invented,
            )
        except ParseError as exc:
            return GenerationResult(raw, None, None, str(exc), prompt_tokens, len(tokens))
        return GenerationResult(raw, copy.title, copy.description, None, prompt_tokens, len(tokens))

    def _generate_with_transformers(
        self,
        token_ids: Sequence[list[int]],
        prefix: int,
        names: list[str] | None,
        frames: Sequence[Frame] | None = None,
    ) -> list[list[int]]:
        """transformers' generate(), for models whose attention the own loop does not cover.
        The prefix's KV cache is shared by the rows of each adapter; rows are laid out as
        [prefix][padding][own suffix], the mask hiding the padding (positions skip it)."""
        routing: dict[str, Any] = {} if names is None else {"adapter_names": names}
        framing: dict[str, Any] = {}
        if frames is not None:  # the frame picks each token from the greedy proposal
            eos = self.tokenizer.eos_token_id
            framing["logits_processor"] = LogitsProcessorList([FrameLogits(frames, eos)])
            framing["stopping_criteria"] = StoppingCriteriaList([FrameStop(frames)])
        pad = self.tokenizer.pad_token_id
        suffixes = [ids[prefix:] for ids in token_ids]
        width = max(len(suffix) for suffix in suffixes)
        rows = [token_ids[0][:prefix] + [pad] * (width - len(s)) + s for s in suffixes]
        mask = [[1] * prefix + [0] * (width - len(s)) + [1] * len(s) for s in suffixes]
        input_ids = torch.tensor(rows, device=self.device)
        attention_mask = torch.tensor(mask, device=self.device)
        with torch.inference_mode():
            cache = None
            if prefix:
                # LoRA changes the keys and values: one prefix per distinct adapter.
                distinct = list(dict.fromkeys(names or [""]))
                firsts = [(names or [""]).index(name) for name in distinct]
                cache = DynamicCache(config=self.model.config)
                self.model(
                    input_ids=input_ids[firsts, :prefix],
                    past_key_values=cache,
                    use_cache=True,
                    **({} if names is None else {"adapter_names": distinct}),
                )
                owner = [distinct.index(name) for name in names or [""] * len(rows)]
                cache.batch_select_indices(torch.tensor(owner, device=self.device))
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                past_key_values=cache,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=self.tokenizer.eos_token_id,
                **routing,
                **framing,
            )
        ends = {pad, self.tokenizer.eos_token_id}
        return [[t for t in row[input_ids.shape[1] :].tolist() if t not in ends] for row in output]


def _common_prefix_length(token_ids: Sequence[list[int]]) -> int:
    """Tokens every prompt starts with, leaving each at least one token of its own."""
    first = token_ids[0]
    length = min(len(ids) for ids in token_ids) - 1
    for ids in token_ids[1:]:
        same = 0
        while same < length and ids[same] == first[same]:
            same += 1
        length = same
    return max(length, 0)
