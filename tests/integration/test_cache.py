"""The copy cache, single flight and unchanged-content skip against a real Redis."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from redis import Redis as SyncRedis

from copyflow.consumer.cache import CacheStats, CopyCache, Outcome, RedisGuard, cache_key, connect
from copyflow.consumer.pipeline import Job, jobs_for
from copyflow.plugins.generators import GenerationResult
from copyflow.plugins.review import Reviewed
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import CheckResult, ModelInfo, ProductEvent
from copyflow.schemas.settings import CacheSettings, RedisSettings
from tests.harness import RedisServer, product_event

pytestmark = pytest.mark.integration

MODEL = ModelInfo(base="tiny", revision="r1", prompt_version="v1")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingGenerator:
    """Stands in for the worker pool: answers after a delay, counting what it generated."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.generated: list[Job] = []

    async def __call__(self, jobs: Sequence[Job]) -> list[Outcome]:
        await asyncio.sleep(self.delay_s)
        self.generated.extend(jobs)
        if self.fail:
            return [DeadLetter("generation", "boom") for _ in jobs]
        return [
            Reviewed(
                title=j.event.data.title.title(),
                description="d",
                checks=[CheckResult(name="grounded", passed=True)],
                fallback_used=False,
            )
            for j in jobs
        ]


def job(index: int = 1, **product: object) -> Job:
    event = ProductEvent.model_validate(product_event(index, **product))
    return jobs_for(event)[0]


def make_cache(
    url: str,
    prefix: str,
    clock: FakeClock | None = None,
    member: str | None = None,
    **cache_settings: Any,
) -> CopyCache:
    redis_settings = RedisSettings(url=url, socket_timeout_s=0.3, connect_timeout_s=0.3)
    settings = CacheSettings(prefix=prefix, **cache_settings)
    guard = RedisGuard(5.0, CacheStats(), clock or FakeClock())
    return CopyCache(connect(redis_settings), settings, guard, member)


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_second_identical_request_is_a_hit_without_generation(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix)
        generate = CountingGenerator()
        first = await cache.resolve([job(1)], MODEL, generate)
        # Another product with the same content fields: the same copy, from the cache.
        second = await cache.resolve([job(1, product_id="other-id")], MODEL, generate)
        assert len(generate.generated) == 1
        assert [r.cache_hit for r in first + second] == [False, True]
        assert second[0].outcome == first[0].outcome
        assert (cache.stats.hits, cache.stats.misses) == (1, 1)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "change",
    [
        {"model": MODEL.model_copy(update={"adapter_version": "7"})},
        {"model": MODEL.model_copy(update={"prompt_version": "v2"})},
        {"model": MODEL.model_copy(update={"revision": "r2"})},
        {"model": MODEL.model_copy(update={"decoding": "greedy;max_new_tokens=32"})},
        {"channel": "amazon"},
        {"title": "a different title"},
        {"tenant": "tenant-b"},
    ],
    ids=["adapter", "prompt", "revision", "decoding", "channel", "content", "tenant"],
)
def test_cache_key_changes_with_every_part(change: dict[str, Any]) -> None:
    base = job(1)
    event = product_event(
        1,
        tenant=change.get("tenant", "tenant-a"),
        title=change.get("title", base.event.data.title),
        channels=[change.get("channel", "default")],
    )
    changed = jobs_for(ProductEvent.model_validate(event))[0]
    before = cache_key("p", base, MODEL)
    after = cache_key("p", changed, change.get("model", MODEL))
    assert before != after
    # Only the fields the prompt uses matter: a price is not part of the key.
    priced = job(1, price="19.99")
    assert cache_key("p", priced, MODEL) == before


def test_single_flight_in_one_process(redis_url: str, prefix: str) -> None:
    """50 concurrent misses on one key, from 5 clients with their own connections."""

    async def scenario() -> None:
        caches = [make_cache(redis_url, prefix) for _ in range(5)]
        generate = CountingGenerator(delay_s=0.3)
        results = await asyncio.gather(
            *(caches[i % 5].resolve([job(1)], MODEL, generate) for i in range(50))
        )
        assert len(generate.generated) == 1
        assert all(r[0].outcome == results[0][0].outcome for r in results)
        assert sum(not r[0].cache_hit for r in results) == 1
        assert sum(c.stats.single_flight_waits for c in caches) >= 1

    asyncio.run(scenario())


def _resolve_in_process(url: str, prefix: str, count: int, start: Any) -> None:
    async def scenario() -> None:
        cache = make_cache(url, prefix)
        counter = SyncRedis.from_url(url)

        async def generate(jobs: Sequence[Job]) -> list[Outcome]:
            counter.incrby(f"{prefix}:generations", len(jobs))
            return await CountingGenerator(delay_s=0.5)(jobs)

        start.wait()
        await asyncio.gather(*(cache.resolve([job(1)], MODEL, generate) for _ in range(count)))

    asyncio.run(scenario())


def test_single_flight_across_processes(redis_url: str, prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=_resolve_in_process, args=(redis_url, prefix, 25, start))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    try:
        start.set()
        for process in processes:
            process.join(60)
            assert process.exitcode == 0
    finally:
        for process in processes:
            process.kill()
    assert int(SyncRedis.from_url(redis_url).get(f"{prefix}:generations") or 0) == 1


def test_a_waiter_takes_over_at_once_from_a_dead_owner(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix, wait_s=30)
        # A leader that took the lock and died: its lock lives on, its liveness mark does not.
        key = cache_key(prefix, job(1), MODEL)
        await cache.client.set(f"{key}:lock", "worker-9/dead-session", px=60_000)
        generate = CountingGenerator()
        started = asyncio.get_running_loop().time()
        [result] = await cache.resolve([job(1)], MODEL, generate)
        waited = asyncio.get_running_loop().time() - started
        assert isinstance(result.outcome, Reviewed) and not result.cache_hit
        assert waited < 1, "the waiter waited out the lock instead of taking it over"
        assert cache.stats.single_flight_takeovers == 1
        assert await cache.client.get(f"{key}:lock") is None  # released after generating

    asyncio.run(scenario())


def test_a_restarted_worker_takes_over_its_own_old_locks(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        key = cache_key(prefix, job(1), MODEL)
        old = "worker-1/session-before-the-restart"
        mark = f"{prefix}:owner:{old}"
        # The old session's mark has not expired yet (it died a moment ago).
        await make_cache(redis_url, prefix).client.set(mark, "1", px=60_000)
        await make_cache(redis_url, prefix).client.set(f"{key}:lock", old, px=60_000)
        other = make_cache(redis_url, prefix, wait_s=0.3, member="worker-2")
        [waited] = await other.resolve([job(1)], MODEL, CountingGenerator())
        assert other.stats.single_flight_takeovers == 0  # not its lock: it waited it out
        assert other.stats.single_flight_abandoned == 1 and not waited.cache_hit
        await other.client.delete(key)

        restarted = make_cache(redis_url, prefix, wait_s=30, member="worker-1")
        started = asyncio.get_running_loop().time()
        await restarted.resolve([job(1)], MODEL, CountingGenerator())
        assert asyncio.get_running_loop().time() - started < 1
        assert restarted.stats.single_flight_takeovers == 1

    asyncio.run(scenario())


def test_an_owner_renews_its_lock_while_it_generates(redis_url: str, prefix: str) -> None:
    """A generation lasting many lock expiries is still done once: the owner keeps its lock
    and its liveness mark fresh, so the other worker waits for its result."""

    async def scenario() -> None:
        short = {"lock_ttl_s": 0.3, "owner_ttl_s": 0.3, "wait_s": 30}
        leader = make_cache(redis_url, prefix, member="worker-1", **short)
        waiter = make_cache(redis_url, prefix, member="worker-2", **short)
        generate = CountingGenerator(delay_s=2.0)
        first = asyncio.create_task(leader.resolve([job(1)], MODEL, generate))
        await asyncio.sleep(0.2)
        [second] = await waiter.resolve([job(1)], MODEL, generate)
        await first
        assert len(generate.generated) == 1
        assert second.cache_hit and waiter.stats.single_flight_takeovers == 0

    asyncio.run(scenario())


def test_the_wait_for_another_worker_is_bounded(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix, lock_ttl_s=60, wait_s=0.5)
        key = cache_key(prefix, job(1), MODEL)
        # A live owner (its mark is fresh) that never delivers.
        await cache.client.set(f"{prefix}:owner:slow/1", "1", px=60_000)
        await cache.client.set(f"{key}:lock", "slow/1", px=60_000)
        started = asyncio.get_running_loop().time()
        [result] = await cache.resolve([job(1)], MODEL, CountingGenerator())
        assert asyncio.get_running_loop().time() - started < 3
        assert not result.cache_hit and cache.stats.single_flight_abandoned == 1

    asyncio.run(scenario())


def test_a_failed_generation_is_not_cached_and_frees_the_key(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix)
        [failed] = await cache.resolve([job(1)], MODEL, CountingGenerator(fail=True))
        assert isinstance(failed.outcome, DeadLetter)
        generate = CountingGenerator()
        [retried] = await cache.resolve([job(1)], MODEL, generate)
        assert isinstance(retried.outcome, Reviewed) and len(generate.generated) == 1

    asyncio.run(scenario())


def test_an_unreadable_cached_value_is_a_miss(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix)
        await cache.client.set(cache_key(prefix, job(1), MODEL), b"{not json")
        generate = CountingGenerator()
        [result] = await cache.resolve([job(1)], MODEL, generate)
        assert not result.cache_hit and len(generate.generated) == 1

    asyncio.run(scenario())


def test_unchanged_content_is_skipped_per_product_and_channel(redis_url: str, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(redis_url, prefix)
        original = job(1)
        assert await cache.unchanged([original], MODEL) == [False]
        # What is remembered is the id of the suggestion the job published.
        assert str(_suggestion(original).suggestion_id) == original.suggestion_key(MODEL)
        await cache.remember([original], MODEL)
        price_only = job(1, price="9.99", stock=3)  # fields the copy does not use
        retitled = job(1, title="a new title")
        other_channel = jobs_for(
            ProductEvent.model_validate(product_event(1, channels=["amazon"]))
        )[0]
        other_tenant = job(1, tenant="tenant-b")
        flags = await cache.unchanged([price_only, retitled, other_channel, other_tenant], MODEL)
        assert flags == [True, False, False, False]

        # A new prompt (or model, or adapter) would publish another suggestion: not skipped.
        newer = MODEL.model_copy(update={"prompt_version": "v2"})
        assert await cache.unchanged([price_only], newer) == [False]
        # In one batch: a change and then its revert both publish; a repeat does not.
        assert await cache.unchanged([retitled, price_only, price_only], MODEL) == [
            False,
            False,
            True,
        ]

        off = make_cache(redis_url, prefix, skip_unchanged=False)
        assert await off.unchanged([price_only], MODEL) == [False]

    asyncio.run(scenario())


def _suggestion(job: Job) -> Any:
    from copyflow.consumer.pipeline import Pipeline
    from tests.harness import COPYFLOW_INPUT

    result = GenerationResult("TITLE: t\nDESCRIPTION: d", "T", "D", None, 1, 1)
    return Pipeline(COPYFLOW_INPUT, 1 << 20).build(job, result, MODEL, 1.0)


def test_redis_outage_bypasses_the_cache_logs_once_and_recovers(
    own_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        cache = make_cache(own_redis.url, prefix, clock=clock)
        generate = CountingGenerator()
        await cache.resolve([job(1)], MODEL, generate)

        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="copyflow.consumer.cache"):
            for i in range(10):
                [result] = await cache.resolve([job(100 + i)], MODEL, generate)
                assert isinstance(result.outcome, Reviewed) and not result.cache_hit
                clock.now += 1
            assert await cache.unchanged([job(1)], MODEL) == [False]
        down = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert len(down) == 1
        assert cache.stats.bypasses >= 10 and cache.stats.redis_errors >= 1
        # While down, the guard does not even try: one failed call per retry interval.
        assert cache.stats.redis_errors <= 3

        own_redis.start()
        clock.now += 10
        generate.generated.clear()
        await cache.resolve([job(200)], MODEL, generate)
        [again] = await cache.resolve([job(200)], MODEL, generate)
        assert again.cache_hit and len(generate.generated) == 1
        assert any("Redis is back" in r.getMessage() for r in caplog.records)

    asyncio.run(scenario())


def test_a_paused_redis_times_out_instead_of_stalling(own_redis: RedisServer, prefix: str) -> None:
    async def scenario() -> None:
        cache = make_cache(own_redis.url, prefix)
        generate = CountingGenerator()
        await cache.resolve([job(1)], MODEL, generate)
        own_redis.pause()
        loop = asyncio.get_running_loop()
        started = loop.time()
        [result] = await cache.resolve([job(2)], MODEL, generate)
        assert loop.time() - started < 2.0  # socket_timeout_s=0.3, no retry on a timeout
        assert isinstance(result.outcome, Reviewed) and cache.stats.bypasses == 1
        own_redis.resume()

    asyncio.run(scenario())


def test_password_urls_authenticate(prefix: str) -> None:
    server = RedisServer("--requirepass", "s3cret").start()
    try:

        async def scenario() -> None:
            good = make_cache(f"redis://:s3cret@127.0.0.1:{server.port}/0", prefix)
            generate = CountingGenerator()
            await good.resolve([job(1)], MODEL, generate)
            [hit] = await good.resolve([job(1)], MODEL, generate)
            assert hit.cache_hit and good.stats.redis_errors == 0

            wrong = make_cache(f"redis://:nope@127.0.0.1:{server.port}/0", prefix)
            [result] = await wrong.resolve([job(1)], MODEL, generate)
            assert not result.cache_hit and wrong.stats.redis_errors == 1

        asyncio.run(scenario())
    finally:
        server.stop()


def test_settings_reject_a_non_redis_url() -> None:
    from copyflow.schemas import SettingsError, load_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPYFLOW_REDIS__URL", "http://localhost:6379")
        with pytest.raises(SettingsError, match=r"redis\.url \(COPYFLOW_REDIS__URL\)"):
            load_settings()


def test_other_checks_settings_miss_the_cached_checked_copy(redis_url: str, prefix: str) -> None:
    from copyflow.consumer.pipeline import Pipeline
    from copyflow.consumer.worker import build_cache
    from copyflow.plugins.review import CopyReviewer
    from copyflow.schemas import Settings
    from tests.harness import COPYFLOW_INPUT

    settings = Settings.model_validate({"redis": {"url": redis_url}, "cache": {"prefix": prefix}})
    plain = Pipeline(COPYFLOW_INPUT, 1 << 20, CopyReviewer()).served_model(MODEL)
    strict_reviewer = CopyReviewer(banned_phrases=["must-have"])
    strict = Pipeline(COPYFLOW_INPUT, 1 << 20, strict_reviewer).served_model(MODEL)

    async def scenario() -> None:
        cache = build_cache(settings)
        assert cache is not None
        generate = CountingGenerator()
        await cache.resolve([job(1)], plain, generate)
        [hit] = await cache.resolve([job(1)], plain, generate)
        [miss] = await cache.resolve([job(1)], strict, generate)
        assert hit.cache_hit and not miss.cache_hit and len(generate.generated) == 2
        assert hit.outcome.checks == [CheckResult(name="grounded", passed=True)]  # as stored

    asyncio.run(scenario())
