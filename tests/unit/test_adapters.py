"""Serving LoRA adapters: several loaded side by side, chosen per request in one batch."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copyflow.consumer.adapters import AdapterRouter, IncompatibleAdapter
from copyflow.consumer.pool import AdapterLoadError, WorkerPool
from copyflow.plugins.generators import GenerationRequest
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import AdapterReleased
from copyflow.trainer.lora import train_lora
from tests.training import house_example, tiny_spec, trainer_settings

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


@pytest.fixture(scope="module")
def short_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """shop-a's house style, trained with the short adapter prompt s1 instead of v1."""
    root = tmp_path_factory.mktemp("short")
    title, description = STYLES["shop-a"]
    examples = [house_example(i, "shop-a", title, description) for i in range(24)]
    settings = trainer_settings(root, epochs=16)
    train_lora(str(tiny_model_dir), "s1", examples, examples[:4], settings, root / "adapter")
    return root / "adapter"


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


def test_an_adapter_is_asked_with_the_prompt_it_was_trained_with(
    tiny_model_dir: Path, short_adapter: Path
) -> None:
    """A generator whose own prompt is v1 serves an s1 adapter with s1: its requests' prompts
    hold neither v1's instructions nor its example, it writes the style it learnt through s1,
    and in a batch mixed with base-model requests each row gives what it gives alone."""
    spec = tiny_spec(tiny_model_dir)
    generator = spec.build("cpu")
    generator.load_adapter("short", str(short_adapter), "s1")
    base, short = request(1, None), request(1, "short")
    assert "Acme Blue Mug" in generator.render(base)  # v1's example answer
    assert "Acme Blue Mug" not in generator.render(short)
    assert len(generator.render(short)) < len(generator.render(base)) / 2
    requests = [request(i, adapter) for i in range(3) for adapter in ("short", None)]
    results = generator.generate(requests)
    assert [r.title for r in results[::2]] == ["Acme Mug"] * 3
    alone = [generator.generate([req])[0].raw_text for req in requests]
    assert [r.raw_text for r in results] == alone
    # The same adapter asked with v1, the prompt it was not trained with, writes otherwise.
    generator.load_adapter("short_v1", str(short_adapter))
    assert generator.generate([request(1, "short_v1")])[0].raw_text != results[2].raw_text
    pool = WorkerPool(spec, ["cpu"], max_batch=8, max_wait_s=0.01, capacity=16)

    async def served() -> list[Any]:
        await pool.start()
        try:
            await pool.load_adapter("adapter_short", str(short_adapter), "s1")
            return await pool.generate([request(i, "adapter_short") for i in range(3)])
        finally:
            await pool.close()

    assert [r.raw_text for r in asyncio.run(served())] == [r.raw_text for r in results[::2]]


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


def test_the_pool_loads_adapters_while_serving_and_a_restarted_process_keeps_them(
    tiny_model_dir: Path, adapters: dict[str, Path], tmp_path: Path
) -> None:
    spec = tiny_spec(tiny_model_dir)
    pool = WorkerPool(spec, ["cpu", "cpu"], max_batch=8, max_wait_s=0.01, capacity=32)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{}")

    async def body() -> tuple[list[Any], list[Any], list[Any]]:
        await pool.start()
        try:
            # Base-model work keeps flowing while the adapter loads.
            background = asyncio.ensure_future(pool.generate([request(i, None) for i in range(8)]))
            await pool.load_adapter("shop-a", str(adapters["shop-a"]))
            served = await pool.generate([request(i, "shop-a") for i in range(4)])
            os.kill(pool._slots[0].process.pid or 0, signal.SIGKILL)
            await pool.load_adapter("shop-b", str(adapters["shop-b"]))  # one process is down
            after = await pool.generate(
                [request(i, tenant) for i in range(4) for tenant in ("shop-a", "shop-b")]
            )
            with pytest.raises(AdapterLoadError, match="cannot load adapter bad"):
                await pool.load_adapter("bad", str(broken))
            refused = await pool.generate([request(1, "bad")])
            await background
            return served, after, refused
        finally:
            await pool.close()

    served, after, [refused] = asyncio.run(body())
    assert {r.title for r in served} == {"Acme Mug"}
    assert [r.title for r in after] == ["Acme Mug", "Zeta Cup"] * 4
    assert pool.stats.restarts == 1
    assert isinstance(refused, DeadLetter) and "'bad' is not loaded" in refused.reason


def test_a_switch_keeps_the_replaced_adapter_until_no_batch_uses_it(
    tiny_model_dir: Path, adapters: dict[str, Path]
) -> None:
    spec = tiny_spec(tiny_model_dir)
    pool = WorkerPool(spec, ["cpu"], max_batch=8, max_wait_s=0.01, capacity=32)
    router = AdapterRouter(pool)

    def release(version: str | None, location: Path | None, **base: str) -> AdapterReleased:
        info = pool.model_info
        return AdapterReleased(
            tenant="shop-a",
            adapter_version=version,
            base_model=base.get("base_model", info.base),
            base_revision=info.revision,
            prompt_version=base.get("prompt_version", info.prompt_version),
            location=str(location or ""),
        )

    async def body() -> None:
        await pool.start()
        try:
            await router.apply(release("v1", adapters["shop-a"]))
            first = router.route("shop-a")
            assert first is not None and router.route("shop-b") is None
            pinned = router.pin([first])  # a batch routed to v1 is in hand
            await router.apply(release("v2", adapters["shop-b"]))
            assert router.route("shop-a") != first
            [still] = await pool.generate([request(1, first.name)])
            assert still.title == "Acme Mug"  # v1 still serves the batch that holds it
            router.unpin(pinned)
            [gone] = await pool.generate([request(1, first.name)])
            assert isinstance(gone, DeadLetter) and "not loaded" in gone.reason
            with pytest.raises(IncompatibleAdapter, match="trained for"):
                await router.apply(release("v3", adapters["shop-a"], base_model="other"))
            with pytest.raises(IncompatibleAdapter, match="prompt 'x9', which this worker"):
                await router.apply(release("v3", adapters["shop-a"], prompt_version="x9"))
            await router.apply(release(None, None, base_model="other"))  # back to base: always
            assert router.route("shop-a") is None and router.stats.switches == 3
        finally:
            await pool.close()

    asyncio.run(body())


def test_the_gate_answers_exactly_as_a_worker_serves_the_adapter(
    tiny_model_dir: Path, adapters: dict[str, Path]
) -> None:
    """The gate scores what workers will publish: the same adapter, unmerged, through the
    same decoding, gives the same text for the same products, also for an adapter that has
    not learnt its style whole (products it never saw)."""
    from copyflow.trainer.gate import answers

    spec = tiny_spec(tiny_model_dir)
    held = [house_example(200 + i) for i in range(6)]
    gate = spec.build("cpu")
    gate.load_adapter("gate_candidate", str(adapters["shop-a"]))
    gated = [r.raw_text for r in answers(gate, held, "gate_candidate")]
    assert gated != [r.raw_text for r in answers(gate, held)]  # the adapter is in effect
    pool = WorkerPool(spec, ["cpu"], max_batch=4, max_wait_s=0.01, capacity=16)

    async def served() -> list[Any]:
        await pool.start()
        try:
            await pool.load_adapter("adapter_0123", str(adapters["shop-a"]))
            requests = [GenerationRequest(e.product, e.channel, "adapter_0123") for e in held]
            return await pool.generate(requests)
        finally:
            await pool.close()

    assert [r.raw_text for r in asyncio.run(served())] == gated
