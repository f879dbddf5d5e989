"""The transformers generator on a tiny random Llama: real code paths, seconds to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from copyflow.plugins.generators import GenerationRequest, get_prompt
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.generators.spec import model_revision
from copyflow.schemas import Product


@pytest.fixture(scope="module")
def generator(tiny_model_dir: Path) -> TransformersGenerator:
    # float32: batched outputs equal unbatched ones exactly only there (see tests.training).
    return TransformersGenerator(
        str(tiny_model_dir),
        get_prompt("v1"),
        device="cpu",
        dtype="float32",
        max_new_tokens=12,
        batch_size=8,
    )


def requests(n: int) -> list[GenerationRequest]:
    # Titles of different lengths so that the batch needs left padding.
    return [
        GenerationRequest(Product(product_id=f"p{i}", title="shirt " + "blue " * i), "default")
        for i in range(n)
    ]


def test_one_result_per_request_in_order(generator: TransformersGenerator) -> None:
    batch = requests(5)
    results = generator.generate(batch)
    assert len(results) == 5
    for request, result in zip(batch, results, strict=True):
        alone = generator.generate([request])[0]
        assert result.raw_text == alone.raw_text, "batched greedy output must equal unbatched"
        assert 0 < result.new_tokens <= 12
        assert result.prompt_tokens == len(generator.tokenizer(generator.render(request)).input_ids)


def test_a_prompt_over_the_input_budget_is_a_recorded_failure(tiny_model_dir: Path) -> None:
    small = TransformersGenerator(
        str(tiny_model_dir), get_prompt("v1"), device="cpu", max_new_tokens=4, max_input_tokens=64
    )
    results = small.generate(requests(3))
    assert len(results) == 3
    assert all("more than max_input_tokens 64" in (r.parse_error or "") for r in results)


def test_batches_larger_than_batch_size_are_split(generator: TransformersGenerator) -> None:
    assert len(generator.generate(requests(19))) == 19


def test_unparseable_output_is_a_result_not_an_exception(generator: TransformersGenerator) -> None:
    result = generator.generate(requests(1))[0]
    # A random model does not write "TITLE: ..."; that must be recorded, not raised.
    assert result.parse_error is not None
    assert result.title is None


def test_model_info_names_model_revision_and_prompt(
    generator: TransformersGenerator, tiny_model_dir: Path
) -> None:
    info = generator.model_info
    assert info.prompt_version == "v1"
    assert info.revision == model_revision(str(tiny_model_dir))
    assert len(info.revision) == 12


def test_cuda_requested_without_cuda_is_a_clear_error(tiny_model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        TransformersGenerator(str(tiny_model_dir), get_prompt("v1"), device="cuda:0")


def test_framed_answers_always_hold_a_title_and_one_description(tiny_model_dir: Path) -> None:
    """A random model writes no structure; the frame gives every answer its two fields."""
    framed = TransformersGenerator(
        str(tiny_model_dir),
        get_prompt("v3"),
        device="cpu",
        max_new_tokens=20,
        max_title_tokens=5,
        max_description_tokens=8,
    )
    assert framed.render(requests(1)[0]).endswith("<|im_start|>assistant\nTITLE:")
    for result in framed.generate(requests(4)):
        assert result.raw_text.startswith("TITLE:")
        assert result.raw_text.count("\nDESCRIPTION:") == 1
        assert result.new_tokens <= 5 + 4 + 8
        if result.parse_error is None:  # random text may hold no word: then the title is empty
            assert result.title and "\n" not in result.title
            assert result.description is not None and "DESCRIPTION" not in result.description


@pytest.mark.parametrize("amx", [False, True])
def test_auto_takes_bfloat16_on_a_cpu_only_where_it_has_amx_tiles(
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, amx: bool
) -> None:
    """auto is settled once, where the spec is built: the generator, every worker process
    and the copy's identity (ModelInfo.decoding) then name the same dtype."""
    import torch

    from copyflow.plugins.generators import cpu, packing
    from copyflow.schemas import Settings
    from copyflow.wiring import build_spec

    kernels = packing.available(torch.device("cpu"), torch.bfloat16)  # AMX CPUs have them
    chosen = "bfloat16" if amx and kernels else "float32"
    monkeypatch.setattr(cpu, "has_amx", lambda: amx)
    cpu.auto_cpu_dtype.cache_clear()
    try:
        settings = Settings.model_validate(
            {"model": {"name": str(tiny_model_dir)}, "pool": {"devices": "cpu"}}
        )
        spec = build_spec(settings)
        assert spec.dtype == chosen
        generator = spec.build("cpu")
        assert generator.dtype == getattr(torch, chosen)
        assert f"dtype={chosen};" in (generator.model_info.decoding or "")
        pinned = Settings.model_validate(
            {"model": {"name": str(tiny_model_dir), "dtype": "float32"}, "pool": {"devices": "cpu"}}
        )
        assert build_spec(pinned).dtype == "float32"  # a set dtype is never second-guessed
    finally:
        cpu.auto_cpu_dtype.cache_clear()


def test_amx_is_read_from_the_cpu_itself() -> None:
    from copyflow.plugins.generators.cpu import has_amx

    flags = Path("/proc/cpuinfo").read_text().split()  # Linux, as every machine here
    assert has_amx() == ("amx_tile" in flags)
