"""Serving LoRA adapters: several loaded side by side, chosen per request in one batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.generators import GenerationRequest
from plugins.generators.hf import TransformersGenerator
from tests.training import house_example, tiny_spec, trainer_settings
from trainer.lora import train_lora

STYLES = {"shop-a": ("Acme Mug", "A mug."), "shop-b": ("Zeta Cup", "A cup.")}


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One adapter per tenant, each trained on that tenant's house style only."""
    root = tmp_path_factory.mktemp("adapters")
    settings = trainer_settings(root, epochs=16)
    trained = {}
    for tenant, (title, description) in STYLES.items():
        examples = [house_example(i, tenant, title, description) for i in range(24)]
        train_lora(str(tiny_model_dir), "v1", examples, examples[:4], settings, root / tenant)
        trained[tenant] = root / tenant
    return trained


@pytest.fixture
def generator(tiny_model_dir: Path, adapters: dict[str, Path]) -> Iterator[TransformersGenerator]:
    served = tiny_spec(tiny_model_dir).build("cpu")
    for tenant, location in adapters.items():
        served.load_adapter(tenant, str(location))
    yield served


def request(index: int, adapter: str | None) -> GenerationRequest:
    product = house_example(100 + index).product
    return GenerationRequest(product=product, channel="default", adapter=adapter)


def test_one_mixed_batch_gives_each_tenant_its_own_style(
    generator: TransformersGenerator,
) -> None:
    requests = [request(i, adapter) for i in range(3) for adapter in ("shop-a", "shop-b", None)]
    results = generator.generate(requests)
    for req, result in zip(requests, results, strict=True):
        if req.adapter is None:
            assert result.title not in {"Acme Mug", "Zeta Cup"}
        else:
            assert (result.title, result.description) == STYLES[req.adapter]
    # Sharing the prompt prefix per adapter changes nothing: each alone gives the same text.
    alone = [generator.generate([req])[0].raw_text for req in requests]
    assert [r.raw_text for r in results] == alone


def test_an_adapter_not_loaded_is_refused_and_unloading_takes_effect(
    generator: TransformersGenerator,
) -> None:
    with pytest.raises(ValueError, match="adapter 'shop-c' is not loaded"):
        generator.generate([request(1, "shop-c")])
    generator.unload_adapter("shop-a")
    with pytest.raises(ValueError, match="adapter 'shop-a' is not loaded"):
        generator.generate([request(1, "shop-a")])
    [still] = generator.generate([request(1, "shop-b")])
    assert still.title == "Zeta Cup"
