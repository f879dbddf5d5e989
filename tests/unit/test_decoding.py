"""copyflow's own greedy loop against transformers' generate(), on tiny random models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    LogitsProcessorList,
    MistralConfig,
    MistralForCausalLM,
    StoppingCriteriaList,
)

from copyflow.plugins.generators import GenerationRequest, decoding, get_prompt, packing
from copyflow.plugins.generators.frame import Frame, FrameHook, FrameLogits, FrameSpec, FrameStop
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.schemas import Product

EOS = 2
TINY: dict[str, Any] = {
    "vocab_size": 97,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Large initial weights: well separated logits, so greedy choices do not hinge on rounding.
    config = LlamaConfig(**TINY, num_hidden_layers=2, initializer_range=0.3, eos_token_id=EOS)
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("llama")
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def ours(model_dir: Path) -> Any:
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    assert decoding.supports(model)
    model.set_attn_implementation(decoding.ATTENTION)
    return model


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> Any:
    return AutoModelForCausalLM.from_pretrained(model_dir).eval()  # transformers' sdpa


def alone(model: Any, prompt: list[int], max_new_tokens: int, stop: int = EOS) -> list[int]:
    """transformers' generate() on one prompt, without the stop token."""
    with torch.inference_mode():
        out = model.generate(
            input_ids=torch.tensor([prompt]),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stop,
            pad_token_id=stop,
        )
    new = out[0, len(prompt) :].tolist()
    return new[: new.index(stop)] if stop in new else new


SHARED = [5, 17, 33, 8, 41, 12, 9, 60]
PROMPTS = [SHARED + tail for tail in ([3], [70, 71, 72, 73, 74, 75], [44, 45], [90] * 11, [6, 7])]


def test_a_batch_with_a_shared_prefix_equals_each_prompt_alone(ours: Any, reference: Any) -> None:
    got = decoding.greedy(ours, PROMPTS, len(SHARED), max_new_tokens=12, stop={EOS})
    assert got == [alone(reference, p, 12) for p in PROMPTS]


def test_without_a_shared_prefix(ours: Any, reference: Any) -> None:
    prompts = [[4, 5, 6], [50, 51], [7] * 9]
    got = decoding.greedy(ours, prompts, 0, max_new_tokens=8, stop={EOS})
    assert got == [alone(reference, p, 8) for p in prompts]


def test_rows_that_stop_leave_the_batch_and_the_others_go_on_unchanged(
    ours: Any, reference: Any
) -> None:
    free = [alone(reference, p, 12, stop=-1) for p in PROMPTS]
    stop = free[0][2]  # the first row stops after two tokens, the others whenever they say it
    got = decoding.greedy(ours, PROMPTS, len(SHARED), max_new_tokens=12, stop={stop})
    assert got[0] == free[0][:2]
    assert got == [tokens[: tokens.index(stop)] if stop in tokens else tokens for tokens in free]
    assert any(len(tokens) == 12 for tokens in got), "some row must outlive the stopped ones"


def test_a_single_prompt(ours: Any, reference: Any) -> None:
    prompt = PROMPTS[3]
    assert decoding.greedy(ours, [prompt], len(prompt) - 1, max_new_tokens=10, stop={EOS}) == [
        alone(reference, prompt, 10)
    ]


def test_the_generator_agrees_with_plain_generate_on_both_paths(tiny_model_dir: Path) -> None:
    generator = TransformersGenerator(
        str(tiny_model_dir), get_prompt("v1"), device="cpu", max_new_tokens=10, batch_size=8
    )
    assert generator._own_loop
    assert isinstance(generator.model.lm_head, packing.PackedLinear)
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    eos = generator.tokenizer.eos_token_id
    requests = [
        GenerationRequest(Product(product_id=f"p{i}", title="lamp " + "white " * i), "default")
        for i in range(6)
    ]
    expected = [
        generator.tokenizer.decode(alone(plain, generator._token_ids(r), 10, eos)).strip()
        for r in requests
    ]
    assert [r.raw_text for r in generator.generate(requests)] == expected
    # The path for models the loop does not serve: generate() with the shared prefix.
    generator._own_loop = False
    generator.model.set_attn_implementation("sdpa")
    assert [r.raw_text for r in generator.generate(requests)] == expected


def test_the_framed_generator_agrees_on_both_paths(tiny_model_dir: Path) -> None:
    generator = TransformersGenerator(
        str(tiny_model_dir),
        get_prompt("v3"),
        device="cpu",
        max_new_tokens=16,
        max_title_tokens=4,
        max_description_tokens=6,
    )
    assert generator._own_loop
    requests = [
        GenerationRequest(Product(product_id=f"p{i}", title="lamp " + "white " * i), "default")
        for i in range(6)
    ]
    own = generator.generate(requests)
    for result in own:
        assert result.raw_text.startswith("TITLE:")
        assert result.raw_text.count("\nDESCRIPTION:") == 1
        assert result.new_tokens <= 4 + 4 + 6  # title, marker, description
    generator._own_loop = False
    generator.model.set_attn_implementation("sdpa")
    assert generator.generate(requests) == own


def framed(model: Any, prompt: list[int], spec: FrameSpec, max_new_tokens: int) -> list[int]:
    """transformers' generate() on one prompt with the answer frame, without the stop token."""
    frame = Frame(spec)
    with torch.inference_mode():
        out = model.generate(
            input_ids=torch.tensor([prompt]),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=EOS,
            pad_token_id=EOS,
            logits_processor=LogitsProcessorList([FrameLogits([frame], EOS)]),
            stopping_criteria=StoppingCriteriaList([FrameStop([frame])]),
        )
    new = out[0, len(prompt) :].tolist()
    return new[: new.index(EOS)] if EOS in new else new


@pytest.mark.parametrize("max_new_tokens", [16, 6])
def test_the_answer_frame_gives_the_same_tokens_in_both_loops(
    ours: Any, reference: Any, max_new_tokens: int
) -> None:
    free = [alone(reference, p, 16, stop=-1) for p in PROMPTS]
    # A token one row proposes early stands for a newline: that row ends its title by it,
    # others by the title budget; rows leave the batch at different steps.
    newline = free[1][1]
    marker = (60, 61, 62)
    spec = FrameSpec(marker, frozenset({newline}), frozenset({EOS}), 4, 5)
    frames = [Frame(spec) for _ in PROMPTS]
    got = decoding.greedy(
        ours,
        PROMPTS,
        len(SHARED),
        max_new_tokens=max_new_tokens,
        stop={EOS},
        hook=FrameHook(frames),
    )
    assert got == [framed(reference, p, spec, max_new_tokens) for p in PROMPTS]
    if max_new_tokens == 16:
        assert {frame.marker_at for frame in frames} >= {1, 4}
        for tokens in got:
            assert sum(tuple(tokens[i : i + 3]) == marker for i in range(len(tokens))) == 1


def test_a_sliding_window_model_is_left_to_generate() -> None:
    config = MistralConfig(**TINY, num_hidden_layers=1, sliding_window=16)
    assert not decoding.supports(MistralForCausalLM(config))


def test_packed_linear_layers_compute_the_same_with_and_without_lora() -> None:
    if not packing.available(torch.device("cpu"), torch.float32):
        pytest.skip("this PyTorch build has no oneDNN")
    from peft import LoraConfig, get_peft_model

    def build() -> torch.nn.Module:
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Linear(32, 48), torch.nn.ReLU(), torch.nn.Linear(48, 8))

    def adapted(model: torch.nn.Module) -> torch.nn.Module:
        torch.manual_seed(2)  # the same LoRA weights for both
        lora = LoraConfig(r=2, target_modules=["0"], init_lora_weights=False)
        return get_peft_model(model, lora)

    x = torch.randn(5, 3, 32)
    plain, packed = build(), build()
    assert packing.pack_linear_layers(packed, rows_hint=4) == 2
    assert isinstance(packed[0], packing.PackedLinear)
    # A copy (as peft's modules_to_save makes) is a plain layer with the same weights.
    copied = copy.deepcopy(packed[2])
    assert type(copied) is torch.nn.Linear
    with torch.no_grad():
        base = plain(x)
        torch.testing.assert_close(packed(x), base, rtol=1e-5, atol=1e-5)
        hidden = torch.randn(4, 48)
        torch.testing.assert_close(copied(hidden), plain[2](hidden))
        with_lora = adapted(plain)(x)  # peft adapts the model in place
        assert not torch.allclose(with_lora, base, atol=1e-3), "LoRA must change the output"
        torch.testing.assert_close(adapted(packed)(x), with_lora, rtol=1e-5, atol=1e-5)
