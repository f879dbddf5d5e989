"""Most catalog events must cost no generation: reuse copy through Redis.

Three mechanisms, each keyed by the copy's recipe (consumer.identity: content, channel and
its rules, model, adapter, prompt, decoding, checks), so any change to it misses by construction:

- unchanged-content skip: the suggestion id last published per (tenant, product, channel,
  locale); an event that would publish the same suggestion again publishes nothing. It lives in
  one Redis hash per product, beside the product's last content where its format needs that
  (consumer.intake), so that a deletion forgets both with one DEL;
- the copy cache: tenant + sha256 of the recipe -> the checked copy, with a TTL;
- single flight: concurrent misses on one key, in any process, generate once. The first to
  SET NX the key's lock generates; the others poll for its result, bounded by ``wait_s``. A
  lock names its owner (``<member>/<session>``), who renews it and a liveness mark of its own
  while it generates. A waiter takes the lock over at once when the owner's mark is gone
  (expired ``owner_ttl_s`` after its last renewal: the owner died) or when the owner is an
  earlier session of its own member (a restarted worker finding its old locks).

Redis trouble never stops the stream: every Redis call goes through RedisGuard, which turns an
error or timeout into "no cache" for ``retry_after_s``, logs once per outage and counts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from copyflow.consumer.pipeline import Job
from copyflow.plugins.review import Reviewed
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import CheckResult, ModelInfo, Product
from copyflow.schemas.settings import CacheSettings, RedisSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
# What the cache holds is checked copy, not the model's raw answer: a hit then costs neither a
# generation nor the checks (which were most of a hit's work).
Outcome = Reviewed | DeadLetter
GenerateFn = Callable[[Sequence[Job]], Awaitable[list[Outcome]]]

# Bump when the stored value's format changes: old entries then miss instead of misparsing.
_VALUE_FORMAT = "2"

# Record many (key, value) pairs with one expiry in one command (a pipeline costs a command each).
_SET_ALL = """
for i, key in ipairs(KEYS) do redis.call('set', key, ARGV[i + 1], 'EX', ARGV[1]) end
return #KEYS
"""

# One field of each of many hashes (KEYS[i], field ARGV[i]).
_GET_FIELDS = """
local found = {}
for i, key in ipairs(KEYS) do found[i] = redis.call('hget', key, ARGV[i]) end
return found
"""

# Set one field of each of many hashes (KEYS[i], field ARGV[2i], value ARGV[2i+1]) and give each
# hash the expiry ARGV[1] again.
_SET_FIELDS = """
for i, key in ipairs(KEYS) do
  redis.call('hset', key, ARGV[2 * i], ARGV[2 * i + 1])
  redis.call('expire', key, ARGV[1])
end
return #KEYS
"""

# Delete the lock only if it is still ours (it may have expired and been taken by another).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

# KEYS[1]: the owner's liveness mark, then its locks. Renew the mark, and each lock still ours.
_RENEW = """
redis.call('set', KEYS[1], '1', 'PX', ARGV[2])
local renewed = 0
for i = 2, #KEYS do
  if redis.call('get', KEYS[i]) == ARGV[1] then
    redis.call('pexpire', KEYS[i], ARGV[3])
    renewed = renewed + 1
  end
end
return renewed
"""

# Take a lock from the owner seen holding it (never from whoever took it since).
_TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


@dataclass
class CacheStats:
    """Counters for metrics, per suggestion to make (a job = one product event and channel)."""

    hits: int = 0  # jobs answered without generating for them (cache or single flight)
    misses: int = 0  # generations started because nothing was cached
    skips: int = 0  # jobs skipped: content unchanged since the last suggestion
    single_flight_waits: int = 0  # keys another worker was generating, waited for
    single_flight_abandoned: int = 0  # waits that ended without a result: generated here
    single_flight_takeovers: int = 0  # locks taken from a dead owner or an earlier session
    bypasses: int = 0  # jobs processed without the cache because of Redis trouble
    redis_errors: int = 0  # Redis calls that failed or timed out


@dataclass(frozen=True)
class Resolved:
    outcome: Outcome
    cache_hit: bool


def connect(settings: RedisSettings) -> Redis:
    """An asyncio client that fails fast: a slow Redis must not slow the stream."""
    url = settings.url.get_secret_value()
    options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
        # One immediate retry on a broken connection (a restarted Redis), none on a timeout.
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,)),
    }
    if url.startswith("rediss://") and settings.ssl_cafile is not None:
        options["ssl_ca_certs"] = str(settings.ssl_cafile.expanduser())
    client: Redis = Redis.from_url(url, **options)
    return client


class RedisGuard:
    """Runs Redis calls; after a failure, answers "unavailable" for ``retry_after_s`` without
    trying, so an outage costs one timeout per interval, not one per event."""

    def __init__(
        self,
        retry_after_s: float,
        stats: CacheStats,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_after_s = retry_after_s
        self.stats = stats
        self.clock = clock
        self._down_until: float | None = None

    @property
    def available(self) -> bool:
        return self._down_until is None or self.clock() >= self._down_until

    async def run(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """The call's result, or None when Redis is unavailable or the call fails."""
        if not self.available:
            return None
        try:
            result = await call()
        except (TimeoutError, redis_errors.RedisError, OSError) as exc:
            self.stats.redis_errors += 1
            if self._down_until is None:
                log.warning(
                    "Redis unavailable (%s: %s); continuing without the cache, retrying every %gs",
                    type(exc).__name__,
                    exc,
                    self.retry_after_s,
                )
            self._down_until = self.clock() + self.retry_after_s
            return None
        if self._down_until is not None:
            log.warning("Redis is back; using the cache again")
            self._down_until = None
        return result


def cache_key(prefix: str, job: Job, model: ModelInfo) -> str:
    """The job's copy recipe (consumer.identity), the same one its suggestion id comes from.
    model: the served model info (Pipeline.served_model); the job names its adapter."""
    return f"{prefix}:copy:{_VALUE_FORMAT}:{job.event.tenant}:{job.recipe_digest(model)}"


def owner_key(prefix: str, owner: str) -> str:
    """A lock owner's liveness mark."""
    return f"{prefix}:owner:{owner}"


def product_key(prefix: str, tenant: str, product_id: str) -> str:
    """The hash of what copyflow keeps about one product; hashed, as names may hold separators."""
    name = f"{tenant}\x1f{product_id}"
    return f"{prefix}:product:{hashlib.sha256(name.encode()).hexdigest()[:32]}"


def seen_field(job: Job) -> str:
    return f"seen\x1f{job.channel}\x1f{job.event.data.locale}"


def content_field(locale: str) -> str:
    return f"content\x1f{locale}"


def event_key(prefix: str, tenant: str, event_id: str) -> str:
    name = f"{tenant}\x1f{event_id}"
    return f"{prefix}:event:{hashlib.sha256(name.encode()).hexdigest()[:32]}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def encode_copy(copy: Reviewed) -> bytes:
    value = {**vars(copy), "checks": [c.model_dump() for c in copy.checks]}
    return json.dumps(value, ensure_ascii=False).encode()


def decode_copy(raw: bytes | str) -> Reviewed | None:
    try:
        value = json.loads(raw)
        value["checks"] = [CheckResult.model_validate(c) for c in value["checks"]]
        return Reviewed(**value)
    except (ValueError, TypeError, KeyError):
        return None


class CopyCache:
    def __init__(
        self,
        client: Redis,
        settings: CacheSettings,
        guard: RedisGuard,
        member: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """member: this worker's name, stable across its restarts (kafka.group_instance_id);
        None: a name of this process's own, so locks are only taken over from dead owners."""
        self.client = client
        self.settings = settings
        self.guard = guard
        self.stats = guard.stats
        self.sleep = sleep
        self.member = member or f"anonymous-{uuid.uuid4().hex[:12]}"
        self.owner = f"{self.member}/{uuid.uuid4().hex}"
        self._mark_key = owner_key(settings.prefix, self.owner)
        self._lock_ms = max(1, int(settings.lock_ttl_s * 1000))
        self._mark_ms = max(1, int(settings.owner_ttl_s * 1000))
        self._release = client.register_script(_RELEASE)
        self._set_all = client.register_script(_SET_ALL)
        self._get_fields = client.register_script(_GET_FIELDS)
        self._set_fields = client.register_script(_SET_FIELDS)
        self._renew = client.register_script(_RENEW)
        self._take_over = client.register_script(_TAKE_OVER)

    # -- unchanged-content skip ---------------------------------------------------------------

    async def unchanged(self, jobs: Sequence[Job], model: ModelInfo) -> list[bool]:
        """For each job, in order: would it publish the suggestion last published for its
        product and channel? Compared by suggestion id, which covers the content hash and the
        model, adapter and prompt versions: a new model or prompt is not skipped. Within the
        batch each kept job counts as published, so a change and its revert both go out."""
        if not (self.settings.skip_unchanged and jobs):
            return [False] * len(jobs)
        keys, fields = self._seen(jobs)
        seen = await self.guard.run(lambda: self._get_fields(keys=keys, args=fields))
        if seen is None:
            return [False] * len(jobs)
        last = {
            (key, field): _text(value)
            for key, field, value in zip(keys, fields, seen, strict=True)
            if value
        }
        flags = []
        for key, field, job in zip(keys, fields, jobs, strict=True):
            identity = job.suggestion_key(model)
            flags.append(last.get((key, field)) == identity)
            last[key, field] = identity
        self.stats.skips += sum(flags)
        return flags

    async def remember(self, jobs: Sequence[Job], model: ModelInfo) -> None:
        """Record the suggestions these jobs published (call only after the broker
        acknowledged them)."""
        if not (self.settings.skip_unchanged and jobs):
            return
        keys, fields = self._seen(jobs)
        values = [str(self.settings.seen_ttl_s)]
        for field, job in zip(fields, jobs, strict=True):
            values += [field, job.suggestion_key(model)]
        await self.guard.run(lambda: self._set_fields(keys=keys, args=values))

    def _seen(self, jobs: Sequence[Job]) -> tuple[list[str], list[str]]:
        prefix = self.settings.prefix
        keys = [product_key(prefix, job.event.tenant, job.event.data.product_id) for job in jobs]
        return keys, [seen_field(job) for job in jobs]

    # -- what formats need: deletions, previous content, redelivered events ------------------

    async def forget(self, products: Sequence[tuple[str, str]]) -> None:
        """Forget deleted products ((tenant, product id)): their skip state and content."""
        if not products:
            return
        prefix = self.settings.prefix
        keys = [product_key(prefix, tenant, product) for tenant, product in products]
        await self.guard.run(lambda: self.client.delete(*keys))

    async def previous(self, products: Sequence[tuple[str, str, str]]) -> list[str | None]:
        """The content last kept for each (tenant, product id, locale): Product JSON or None
        (none kept, or Redis unavailable)."""
        if not products:
            return []
        prefix = self.settings.prefix
        keys = [product_key(prefix, tenant, product) for tenant, product, _ in products]
        fields = [content_field(locale) for _, _, locale in products]
        found = await self.guard.run(lambda: self._get_fields(keys=keys, args=fields))
        if found is None:
            return [None] * len(products)
        return [None if value is None else _text(value) for value in found]

    async def keep_content(self, products: Sequence[Product], tenants: Sequence[str]) -> None:
        """Keep each product's content, for a later event that leaves fields out."""
        if not products:
            return
        prefix = self.settings.prefix
        keys = [
            product_key(prefix, tenant, p.product_id)
            for p, tenant in zip(products, tenants, strict=True)
        ]
        values = [str(self.settings.seen_ttl_s)]
        for product in products:
            values += [content_field(product.locale), product.model_dump_json()]
        await self.guard.run(lambda: self._set_fields(keys=keys, args=values))

    async def handled(self, events: Sequence[tuple[str, str]]) -> list[bool]:
        """For each (tenant, event id): was an event of this id handled before?"""
        if not events:
            return []
        prefix = self.settings.prefix
        keys = [event_key(prefix, tenant, event_id) for tenant, event_id in events]
        found = await self.guard.run(lambda: self.client.mget(keys))
        if found is None:
            return [False] * len(events)
        return [value is not None for value in found]

    async def mark_handled(self, events: Sequence[tuple[str, str]]) -> None:
        """Remember event ids handled (after their outputs were acknowledged)."""
        if not events:
            return
        prefix = self.settings.prefix
        keys = [event_key(prefix, tenant, event_id) for tenant, event_id in events]
        values: list[str | int] = [self.settings.event_ids_ttl_s, *("1" for _ in keys)]
        await self.guard.run(lambda: self._set_all(keys=keys, args=values))

    # -- cache and single flight --------------------------------------------------------------

    async def resolve(
        self, jobs: Sequence[Job], model: ModelInfo, generate: GenerateFn, force: bool = False
    ) -> list[Resolved]:
        """One outcome per job, in order: from the cache, from another worker's generation,
        or generated here (once per distinct key). force: nothing is read from the cache;
        what is generated replaces what it held."""
        if not jobs:
            return []
        keys = [cache_key(self.settings.prefix, job, model) for job in jobs]
        first: dict[str, Job] = {}
        for key, job in zip(keys, jobs, strict=True):
            first.setdefault(key, job)
        unique = list(first)
        found = await self._get(unique) if self.settings.enabled else None
        if force and found is not None:
            found = {}
        if found is None:
            self.stats.bypasses += len(jobs) if self.settings.enabled else 0
            outcomes = await generate(jobs)
            return [Resolved(outcome, cache_hit=False) for outcome in outcomes]

        missing = [key for key in unique if key not in found]
        claimed = await self._claim(missing)
        leaders = [key for key in missing if claimed.get(key, True) or force]
        followers = [key for key in missing if not (claimed.get(key, True) or force)]
        self.stats.misses += len(leaders)
        self.stats.single_flight_waits += len(followers)
        generated, waited = await asyncio.gather(
            self._generate(leaders, first, generate),
            self._follow(followers, first, generate),
        )
        results: dict[str, Resolved] = {
            key: Resolved(value, cache_hit=True) for key, value in found.items()
        }
        results.update(generated)
        results.update(waited)
        # A key generated here serves its first job; its other jobs were answered by it.
        resolved: list[Resolved] = []
        for key, job in zip(keys, jobs, strict=True):
            result = results[key]
            hit = result.cache_hit or first[key] is not job
            self.stats.hits += hit
            resolved.append(Resolved(result.outcome, hit))
        return resolved

    async def _get(self, keys: Sequence[str]) -> dict[str, Reviewed] | None:
        """The cached results among keys, or None if Redis is unavailable."""
        values = await self.guard.run(lambda: self.client.mget(keys))
        if values is None:
            return None
        found: dict[str, Reviewed] = {}
        for key, raw in zip(keys, values, strict=True):
            result = decode_copy(raw) if raw is not None else None
            if result is not None:
                found[key] = result
        return found

    async def _claim(self, keys: Sequence[str]) -> dict[str, bool]:
        """SET NX each key's lock, naming this owner; True where this worker now generates
        it. An empty answer (Redis trouble) leaves every key to this worker."""
        if not keys:
            return {}

        async def claim() -> list[Any]:
            pipe = self._marked_pipeline()
            for key in keys:
                pipe.set(f"{key}:lock", self.owner, nx=True, px=self._lock_ms)
            return list(await pipe.execute())[1:]

        answers = await self.guard.run(claim)
        if answers is None:
            return {}
        return {key: bool(answer) for key, answer in zip(keys, answers, strict=True)}

    async def _generate(
        self, keys: Sequence[str], first: dict[str, Job], generate: GenerateFn
    ) -> dict[str, Resolved]:
        """Generate the keys whose locks this owner holds, renewing them meanwhile; store the
        results and release the locks."""
        if not keys:
            return {}
        renewing = asyncio.create_task(self._keep_renewed(keys))
        try:
            outcomes = await generate([first[key] for key in keys])
        finally:
            renewing.cancel()
        await self._store(list(zip(keys, outcomes, strict=True)), release=True)
        return {
            key: Resolved(outcome, cache_hit=False)
            for key, outcome in zip(keys, outcomes, strict=True)
        }

    async def _keep_renewed(self, keys: Sequence[str]) -> None:
        """Renew this owner's liveness mark and its locks on keys until cancelled."""
        interval = min(self._lock_ms, self._mark_ms) / 3000
        names = [self._mark_key, *(f"{key}:lock" for key in keys)]
        args: list[str | int] = [self.owner, self._mark_ms, self._lock_ms]
        while True:
            await self.sleep(interval)
            await self.guard.run(lambda: self._renew(keys=names, args=args))

    async def _follow(
        self, keys: Sequence[str], first: dict[str, Job], generate: GenerateFn
    ) -> dict[str, Resolved]:
        """Wait for other workers' results. Take over at once the locks of owners that are
        gone; generate here what was not delivered in time (a lock released without a
        result, the wait ran out, or Redis went away)."""
        results: dict[str, Resolved] = {}
        waiting = list(keys)
        deadline = time.monotonic() + self.settings.wait_s
        delay = 0.01
        while waiting and time.monotonic() < deadline:
            await self.sleep(delay)
            delay = min(delay * 2, 0.2)
            state = await self._poll(waiting)
            if state is None:
                break
            found, owners, gone = state
            for key, result in found.items():
                results[key] = Resolved(result, cache_hit=True)
            taken = await self._take_over_from(
                {key: owners[key] for key in waiting if key not in found and key in gone}
            )
            if taken:
                self.stats.single_flight_takeovers += len(taken)
                self.stats.misses += len(taken)
                results.update(await self._generate(taken, first, generate))
            # No result and no lock: the leader failed; stop waiting for it. A lock another
            # waiter took over first is waited for like any other.
            waiting = [key for key in waiting if key not in results and key in owners]
        orphans = [key for key in keys if key not in results]
        if orphans:
            self.stats.single_flight_abandoned += len(orphans)
            self.stats.misses += len(orphans)
            outcomes = await generate([first[key] for key in orphans])
            for key, outcome in zip(orphans, outcomes, strict=True):
                results[key] = Resolved(outcome, cache_hit=False)
            await self._store(list(zip(orphans, outcomes, strict=True)))
        return results

    def _marked_pipeline(self) -> Any:
        """A pipeline whose first command refreshes this owner's liveness mark: every lock
        taken goes with a fresh mark."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self._mark_key, "1", px=self._mark_ms)
        return pipe

    def _is_gone(self, owner: str, marked: bool) -> bool:
        """Whether a lock's owner can no longer deliver: its liveness mark expired, or it is
        an earlier session of this worker's own member (this worker restarted)."""
        member = owner.rpartition("/")[0]
        return owner != self.owner and (not marked or member == self.member)

    async def _take_over_from(self, owners: dict[str, str]) -> list[str]:
        """The keys whose locks this owner took from the owners seen holding them."""
        if not owners:
            return []

        async def take() -> list[Any]:
            pipe = self._marked_pipeline()
            for key, owner in owners.items():
                await self._take_over(
                    keys=[f"{key}:lock"], args=[owner, self.owner, self._lock_ms], client=pipe
                )
            return list(await pipe.execute())[1:]

        answers = await self.guard.run(take)
        if answers is None:
            return []
        return [key for key, answer in zip(owners, answers, strict=True) if answer]

    async def _store(self, generated: Sequence[tuple[str, Outcome]], release: bool = False) -> None:
        """Cache what was generated (not failures) and, with release, free this owner's locks."""
        ttl = self.settings.ttl_s

        async def store() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key, outcome in generated:
                if isinstance(outcome, Reviewed):
                    pipe.set(key, encode_copy(outcome), ex=ttl)
            if release:
                for key, _ in generated:  # queued on the pipeline, run by execute()
                    await self._release(keys=[f"{key}:lock"], args=[self.owner], client=pipe)
            await pipe.execute()

        await self.guard.run(store)

    async def _poll(
        self, keys: Sequence[str]
    ) -> tuple[dict[str, Reviewed], dict[str, str], set[str]] | None:
        """The results found, each lock's owner, and the keys whose owner is gone."""

        async def poll() -> list[Any]:
            # Locks first: a result is stored before its lock is released, so a lock seen
            # gone here means the result (if any) is visible to the MGET after it.
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.get(f"{key}:lock")
            pipe.mget(keys)
            *locks, values = await pipe.execute()
            owners = {key: _text(lock) for key, lock in zip(keys, locks, strict=True) if lock}
            distinct = sorted(set(owners.values()))
            pipe = self.client.pipeline(transaction=False)
            for owner in distinct:
                pipe.exists(owner_key(self.settings.prefix, owner))
            marks = await pipe.execute() if distinct else []
            return [values, owners, dict(zip(distinct, marks, strict=True))]

        answered = await self.guard.run(poll)
        if answered is None:
            return None
        values, owners, marks = answered
        found = {
            key: result
            for key, raw in zip(keys, values, strict=True)
            if raw is not None and (result := decode_copy(raw)) is not None
        }
        gone = {key for key, owner in owners.items() if self._is_gone(owner, bool(marks[owner]))}
        return found, owners, gone
