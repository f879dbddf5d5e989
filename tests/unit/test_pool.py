"""The worker pool with real spawned processes running the tiny model."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch

from copyflow.consumer.pool import PoolError, WorkerPool
from copyflow.plugins.generators import GenerationRequest, GenerationResult
from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.generators.spec import TransformersSpec
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import Product

T = TypeVar("T")


@dataclass(frozen=True)
class FailingSpec(TransformersSpec):
    """Builds a generator that runs out of memory on any batch of more than one request,
    and always fails on products whose id starts with 'poison'."""

    def build(self, device: str) -> Any:
        return _Failing(super().build(device))


class _Wrapping:
    def __init__(self, inner: TransformersGenerator) -> None:
        self.inner = inner

    @property
    def model_info(self) -> Any:
        return self.inner.model_info


class _Failing(_Wrapping):
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        if any(r.product.product_id.startswith("poison") for r in requests):
            raise ValueError("poisoned request")
        if len(requests) > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return self.inner.generate(requests)


@dataclass(frozen=True)
class BatchNamingSpec(TransformersSpec):
    """Builds a generator whose answer to each request names the products of its batch."""

    def build(self, device: str) -> Any:
        return _BatchNaming(super().build(device))


class _BatchNaming(_Wrapping):
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        names = ",".join(sorted(r.product.product_id for r in requests))
        return [GenerationResult(names, None, None, "named", 1, 1) for _ in requests]


def spec_for(
    model: Path, max_new_tokens: int = 6, cls: type[TransformersSpec] = TransformersSpec
) -> TransformersSpec:
    return cls(
        location=str(model),
        prompt_version="v1",
        dtype="float32",
        max_new_tokens=max_new_tokens,
        batch_size=64,
    )


def pool_for(
    spec: TransformersSpec,
    devices: Sequence[str] = ("cpu",),
    max_batch: int = 8,
    max_wait_s: float = 0.01,
    capacity: int = 64,
) -> WorkerPool:
    return WorkerPool(spec, devices, max_batch=max_batch, max_wait_s=max_wait_s, capacity=capacity)


def requests(n: int, prefix: str = "p") -> list[GenerationRequest]:
    return [
        GenerationRequest(
            Product(product_id=f"{prefix}{i}", title=f"shirt {i} " + "x " * i), "default"
        )
        for i in range(n)
    ]


def with_pool(pool: WorkerPool, body: Callable[[WorkerPool], Awaitable[T]]) -> T:
    async def run() -> T:
        await pool.start()
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def expected(tiny_model_dir: Path) -> Callable[[GenerationRequest], str]:
    """What the in-process generator writes for a request alone."""
    local = spec_for(tiny_model_dir).build("cpu")
    return lambda request: local.generate([request])[0].raw_text


def test_results_reach_their_own_callers_under_concurrency(
    tiny_model_dir: Path, expected: Callable[[GenerationRequest], str]
) -> None:
    pool = pool_for(spec_for(tiny_model_dir), devices=["cpu", "cpu"], max_wait_s=0.02)
    callers = [requests(5, prefix=f"c{c}-") for c in range(10)]

    async def body(pool: WorkerPool) -> list[list[Any]]:
        return list(await asyncio.gather(*(pool.generate(batch) for batch in callers)))

    answers = with_pool(pool, body)
    for batch, results in zip(callers, answers, strict=True):
        assert [r.raw_text for r in results] == [expected(r) for r in batch]
    assert pool.stats.batches < 50, "requests from different callers must share batches"


def test_batches_close_at_max_batch_or_max_wait(tiny_model_dir: Path) -> None:
    pool = pool_for(spec_for(tiny_model_dir), max_wait_s=0.3)

    async def body(pool: WorkerPool) -> None:
        await pool.generate(requests(8))  # full at once: one batch of 8
        await pool.generate(requests(3))  # never full: closed by the wait

    with_pool(pool, body)
    assert pool.stats.batch_sizes == {8: 1, 3: 1}


def test_a_queue_the_idle_processes_can_take_is_dealt_out_by_prompt_length(
    tiny_model_dir: Path,
) -> None:
    pool = pool_for(
        spec_for(tiny_model_dir, cls=BatchNamingSpec), devices=["cpu", "cpu"], max_wait_s=0.3
    )
    # Prompt lengths grow with the index: the shortest half in one batch would leave one process
    # with far less work than the other.
    results = with_pool(pool, lambda pool: pool.generate(requests(12)))
    batches = {r.raw_text for r in results}
    assert pool.stats.batch_sizes == {6: 2}
    assert batches == {"p0,p11,p3,p4,p7,p8", "p1,p10,p2,p5,p6,p9"}


def test_killing_a_worker_mid_batch_loses_no_request(
    tiny_model_dir: Path, expected: Callable[[GenerationRequest], str]
) -> None:
    pool = pool_for(spec_for(tiny_model_dir, max_new_tokens=6), max_batch=16)
    batch = requests(16)

    async def body(pool: WorkerPool) -> list[Any]:
        task = asyncio.ensure_future(pool.generate(batch))
        while pool._slots[0].batch is None:  # wait until the batch is in the process
            await asyncio.sleep(0.001)
        os.kill(pool._slots[0].process.pid or 0, signal.SIGKILL)
        return await task

    results = with_pool(pool, body)
    assert pool.stats.restarts == 1
    assert [r.raw_text for r in results] == [expected(r) for r in batch]


def test_out_of_memory_on_a_batch_of_8_ends_with_8_answers(tiny_model_dir: Path) -> None:
    pool = pool_for(spec_for(tiny_model_dir, cls=FailingSpec))
    results = with_pool(pool, lambda pool: pool.generate(requests(8)))
    assert len(results) == 8
    assert all(isinstance(r, GenerationResult) for r in results)


def test_a_request_that_always_fails_becomes_a_dead_letter(tiny_model_dir: Path) -> None:
    pool = pool_for(spec_for(tiny_model_dir, cls=FailingSpec))
    batch = requests(3) + requests(1, prefix="poison") + requests(4, prefix="q")
    results = with_pool(pool, lambda pool: pool.generate(batch))
    kinds = [type(r).__name__ for r in results]
    assert kinds == ["GenerationResult"] * 3 + ["DeadLetter"] + ["GenerationResult"] * 4
    assert isinstance(results[3], DeadLetter) and "poisoned request" in results[3].reason


def test_the_pool_never_holds_more_than_its_capacity(tiny_model_dir: Path) -> None:
    pool = pool_for(spec_for(tiny_model_dir), capacity=4)

    async def body(pool: WorkerPool) -> list[list[Any]]:
        return list(await asyncio.gather(*(pool.generate(requests(5, f"c{c}-")) for c in range(4))))

    answers = with_pool(pool, body)
    assert sum(len(a) for a in answers) == 20
    assert pool.stats.max_in_flight == 4
    assert max(pool.stats.batch_sizes) <= 4


def test_close_drains_work_in_flight(tiny_model_dir: Path) -> None:
    pool = pool_for(spec_for(tiny_model_dir), max_batch=4)

    async def run() -> list[Any]:
        await pool.start()
        task = asyncio.ensure_future(pool.generate(requests(12)))
        await asyncio.sleep(0.05)
        await pool.close()
        return await task

    results = asyncio.run(run())
    assert len(results) == 12 and all(isinstance(r, GenerationResult) for r in results)
    assert not any(slot.process.is_alive() for slot in pool._slots)


def test_a_model_that_cannot_load_fails_the_start(tmp_path: Path) -> None:
    pool = pool_for(spec_for(tmp_path), max_batch=4, capacity=4)
    with pytest.raises(PoolError, match="worker on cpu"):
        asyncio.run(pool.start())
