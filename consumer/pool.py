"""The worker pool: one spawned process per device slot, each owning its model.

The event loop side never blocks: requests wait in a bounded queue, a dispatcher forms
micro-batches (closed at ``max_batch`` requests or ``max_wait_s`` after the oldest arrived,
grouped by prompt length) and hands each to an idle process. A reader thread per process turns
its answers into future results. A process that dies is restarted and its batch re-queued; a
request that was in a crash is retried alone, and after ``max_attempts`` crashes it fails.

LoRA adapters are loaded into every process side by side (``load_adapter``); a process that is
restarted loads the ones in use before it takes work. A process handles its messages in order,
so a batch sent after an adapter's load was acknowledged always finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from copyflow.consumer.pipeline import generate_splitting
from copyflow.plugins.generators import GenerationRequest, GenerationResult
from copyflow.plugins.generators.prompts import render_product
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import ModelInfo

if TYPE_CHECKING:  # torch is imported only where generation runs
    from copyflow.plugins.generators.spec import TransformersSpec

log = logging.getLogger(__name__)

Outcome = GenerationResult | DeadLetter


class PoolError(RuntimeError):
    """The pool could not start (for example, a worker process could not load the model)."""


class AdapterLoadError(RuntimeError):
    """A worker process could not load an adapter; the pool does not use it."""


@dataclass
class PoolStats:
    """Counters for metrics: queue depth, in-flight work, batch sizes, restarts, output."""

    queued: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    batches: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    restarts: int = 0
    requests: int = 0
    new_tokens: int = 0
    requests_failed: int = 0


@dataclass
class _Request:
    id: int
    request: GenerationRequest
    future: asyncio.Future[Outcome]
    length: int
    enqueued: float
    attempts: int = 0


@dataclass
class _Slot:
    index: int
    device: str
    process: BaseProcess
    conn: Connection
    ready: bool = False
    batch: list[_Request] | None = None


def _child_main(
    spec: TransformersSpec,
    device: str,
    threads: int,
    adapters: dict[str, tuple[str, str | None]],
    conn: Connection,
) -> None:
    """A worker process: load the model and the adapters in use, then answer batches and
    adapter loads in the order they come, until told to stop (None)."""
    _keep_freed_memory()
    import torch

    torch.set_num_threads(threads)
    try:
        generator = spec.build(device)
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    broken = {}
    for name, (location, prompt_version) in adapters.items():
        try:
            generator.load_adapter(name, location, prompt_version)
        except Exception as exc:  # its requests fail alone; the process still serves the rest
            broken[name] = f"{type(exc).__name__}: {exc}"
    conn.send(("ready", generator.model_info, broken))
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        kind, *args = message
        if kind == "batch":
            batch_id, requests = args
            conn.send(("done", batch_id, generate_splitting(generator, requests)))
        elif kind == "load":
            name, location, prompt_version = args
            try:
                generator.load_adapter(name, location, prompt_version)
            except Exception as exc:
                conn.send(("adapter", name, f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("adapter", name, None))
        elif kind == "unload":
            generator.unload_adapter(args[0])


def _keep_freed_memory() -> None:
    """Have glibc keep freed memory for reuse: by default it hands large blocks back to the
    kernel at once, and each batch's activations (tens of MB) then fault in their pages anew,
    which measured 10-20% of a batch's time on these virtual machines. Elsewhere a no-op."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)  # glibc's largest: heap, not mmap, below it
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)  # never shrink the heap


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from <malloc.h>


def resolve_devices(devices: str) -> list[str]:
    """'auto': every CUDA device, else one CPU slot per core; or an explicit comma list,
    where a repeated device gets several worker processes ('cpu,cpu', 'cuda:0,cuda:0')."""
    if devices != "auto":
        return [device.strip() for device in devices.split(",")]
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"] * max(1, min(os.cpu_count() or 1, 4))


class WorkerPool:
    def __init__(
        self,
        spec: TransformersSpec,
        devices: Sequence[str],
        *,
        max_batch: int,
        max_wait_s: float,
        capacity: int,
        threads_per_cpu_worker: int | None = None,
        max_attempts: int = 3,
        start_timeout_s: float = 300.0,
    ) -> None:
        self.spec = spec
        self.devices = list(devices)
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.capacity = capacity
        cpu_workers = sum(d == "cpu" for d in self.devices) or 1
        self.threads = threads_per_cpu_worker or max(1, (os.cpu_count() or 1) // cpu_workers)
        self.max_attempts = max_attempts
        self.start_timeout_s = start_timeout_s
        self.stats = PoolStats()
        self._context = multiprocessing.get_context("spawn")  # never fork with CUDA
        self._ids = itertools.count()
        self._pending: deque[_Request] = deque()
        self._slots: list[_Slot] = []
        self._model_info: ModelInfo | None = None
        self._closing = False
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._capacity: asyncio.Semaphore | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self._ready = asyncio.Event()
        # name -> (location, prompt version), loaded in every process
        self._adapters: dict[str, tuple[str, str | None]] = {}
        self._loading: dict[str, tuple[set[int], asyncio.Future[None]]] = {}

    @property
    def model_info(self) -> ModelInfo:
        if self._model_info is None:
            raise RuntimeError("the pool has not started")
        return self._model_info

    async def ready(self) -> None:
        """Wait until start() has finished."""
        await self._ready.wait()

    def readiness(self) -> tuple[bool, str]:
        """Whether the pool takes work now, and how many of its processes are ready (one
        that died is being restarted meanwhile; the others serve)."""
        ready = sum(slot.ready for slot in self._slots)
        detail = f"{ready}/{len(self.devices)} generator processes ready"
        if self._closing:
            return False, f"closing; {detail}"
        return self._ready.is_set() and ready > 0, detail

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._capacity = asyncio.Semaphore(self.capacity)
        self._started = self._loop.create_future()
        for index, device in enumerate(self.devices):
            self._slots.append(self._spawn(index, device))
        try:
            await asyncio.wait_for(asyncio.shield(self._started), self.start_timeout_s)
        except BaseException:
            await self._terminate()
            raise
        self._running = True
        self._ready.set()
        self._dispatcher = self._loop.create_task(self._dispatch(), name="pool-dispatcher")

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Outcome]:
        """Queue the requests (waiting for room when the pool is full) and await their results,
        in order."""
        assert self._loop is not None and self._capacity is not None and self._wake is not None
        if self._closing:
            raise PoolError("the pool is shutting down")
        futures = []
        for request in requests:
            await self._capacity.acquire()
            future: asyncio.Future[Outcome] = self._loop.create_future()
            future.add_done_callback(self._release)
            self._pending.append(
                _Request(
                    next(self._ids),
                    request,
                    future,
                    len(render_product(request.product)),
                    time.monotonic(),
                )
            )
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            self.stats.queued = len(self._pending)
            futures.append(future)
            self._wake.set()
        return list(await asyncio.gather(*futures))

    async def load_adapter(
        self,
        name: str,
        location: str,
        prompt_version: str | None = None,
        timeout_s: float = 300.0,
    ) -> None:
        """Load an adapter into every process, to be asked with prompt_version's prompt (None:
        the pool's); returns once all can serve it. Raises AdapterLoadError (and leaves it
        unused) when any process cannot load it in time."""
        assert self._loop is not None
        if name in self._adapters:
            return
        self._adapters[name] = (location, prompt_version)
        waiting = {slot.index for slot in self._slots}
        done: asyncio.Future[None] = self._loop.create_future()
        self._loading[name] = (waiting, done)
        for slot in self._slots:
            # A process that is gone loads it when restarted, and answers "ready" instead.
            with contextlib.suppress(BrokenPipeError, OSError):
                slot.conn.send(("load", name, location, prompt_version))
        try:
            await asyncio.wait_for(done, timeout_s)
        except TimeoutError:
            self.unload_adapter(name)
            raise AdapterLoadError(f"adapter {name} not loaded within {timeout_s:.0f} s") from None
        except AdapterLoadError:
            self.unload_adapter(name)
            raise
        finally:
            self._loading.pop(name, None)

    def unload_adapter(self, name: str) -> None:
        """Free an adapter in every process (requests must no longer name it)."""
        self._adapters.pop(name, None)
        for slot in self._slots:
            with contextlib.suppress(BrokenPipeError, OSError):
                slot.conn.send(("unload", name))

    async def close(self, drain_timeout_s: float = 600.0) -> None:
        """Finish what was queued, then stop the processes."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        deadline = time.monotonic() + drain_timeout_s
        while self.stats.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
        await self._terminate()

    # -- internals --------------------------------------------------------------------------

    def _release(self, _: asyncio.Future[Outcome]) -> None:
        assert self._capacity is not None
        self.stats.in_flight -= 1
        self._capacity.release()

    def _spawn(self, index: int, device: str) -> _Slot:
        parent, child = self._context.Pipe()
        threads = self.threads if device == "cpu" else 1
        process = self._context.Process(
            target=_child_main,
            args=(self.spec, device, threads, dict(self._adapters), child),
            name=f"copyflow-generator-{index}",
            daemon=True,
        )
        process.start()
        child.close()
        slot = _Slot(index, device, process, parent)
        threading.Thread(
            target=self._read, args=(slot,), daemon=True, name=f"pool-reader-{index}"
        ).start()
        return slot

    def _read(self, slot: _Slot) -> None:
        """Reader thread: forward each answer to the event loop; report a dead process."""
        assert self._loop is not None
        while True:
            try:
                message = slot.conn.recv()
            except (EOFError, OSError):
                self._call(self._on_exit, slot)
                return
            self._call(self._on_message, slot, message)

    def _call(self, callback: Any, *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # a closed loop: the pool is gone
            self._loop.call_soon_threadsafe(callback, *args)

    def _on_message(self, slot: _Slot, message: tuple[Any, ...]) -> None:
        assert self._wake is not None and self._started is not None
        kind = message[0]
        if kind == "ready":
            slot.ready = True
            self._model_info = message[1]
            broken: dict[str, str] = message[2]
            for name, reason in broken.items():
                log.error(
                    "restarted worker on %s cannot load adapter %s: %s", slot.device, name, reason
                )
            for name in list(self._loading):  # it loaded every adapter in use
                self._adapter_loaded(slot, name, broken.get(name))
            if not self._started.done() and all(s.ready for s in self._slots):
                self._started.set_result(None)
        elif kind == "failed":
            if not self._started.done():
                self._started.set_exception(PoolError(f"worker on {slot.device}: {message[1]}"))
        elif kind == "adapter":
            self._adapter_loaded(slot, message[1], message[2])
        elif kind == "done":
            batch, slot.batch = slot.batch or [], None
            for item, outcome in zip(batch, message[2], strict=True):
                if not item.future.done():
                    item.future.set_result(outcome)
                    self.stats.requests += 1
                    if isinstance(outcome, DeadLetter):
                        self.stats.requests_failed += 1
                    else:
                        self.stats.new_tokens += outcome.new_tokens
        self._wake.set()

    def _adapter_loaded(self, slot: _Slot, name: str, error: str | None) -> None:
        waiting, done = self._loading.get(name, (set(), None))
        if done is None or done.done():
            return
        if error is not None:
            done.set_exception(
                AdapterLoadError(f"worker on {slot.device} cannot load adapter {name}: {error}")
            )
            return
        waiting.discard(slot.index)
        if not waiting:
            done.set_result(None)

    def _on_exit(self, slot: _Slot) -> None:
        assert self._wake is not None
        if self._closing and slot.batch is None:
            return
        slot.process.join(timeout=5)  # the pipe closed first; the exit code follows at once
        code = slot.process.exitcode
        if not self._running:  # still starting: a worker that cannot load fails the start
            if self._started is not None and not self._started.done():
                self._started.set_exception(
                    PoolError(
                        f"worker on {slot.device} exited with code {code} while loading the model"
                    )
                )
            return
        log.error("generator process on %s exited (code %s); restarting it", slot.device, code)
        self.stats.restarts += 1
        for item in reversed(slot.batch or []):
            item.attempts += 1
            if item.future.done():
                continue
            if item.attempts >= self.max_attempts:
                self.stats.requests_failed += 1
                item.future.set_result(
                    DeadLetter(
                        "generation",
                        f"generator process died {item.attempts} times on this request "
                        f"(last exit code {code})",
                    )
                )
            else:
                self._pending.appendleft(item)
        slot.batch = None
        self._slots[slot.index] = self._spawn(slot.index, slot.device)
        self._wake.set()

    async def _dispatch(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                idle = [s for s in self._slots if s.ready and s.batch is None]
                if not idle:
                    break
                oldest = self._pending[0]
                waited = time.monotonic() - oldest.enqueued
                full = len(self._pending) >= self.max_batch or oldest.attempts > 0
                if not (full or self._closing or waited >= self.max_wait_s):
                    self._loop_call_later(self.max_wait_s - waited)
                    break
                if len(idle) > 1 and len(self._pending) <= self.max_batch * len(idle):
                    # The idle processes can take the whole queue: deal it out by prompt
                    # length, so that each gets about the same work.
                    for slot, batch in zip(idle, self._deal(len(idle)), strict=False):
                        self._send(slot, batch)
                else:
                    self._send(idle[0], self._take_batch(self.max_batch))
            self.stats.queued = len(self._pending)

    def _loop_call_later(self, delay: float) -> None:
        assert self._loop is not None and self._wake is not None
        self._loop.call_later(max(delay, 0.0), self._wake.set)

    def _take_batch(self, size: int) -> list[_Request]:
        """The oldest request and up to size - 1 others nearest to it in prompt length;
        a request that was in a crashed batch goes alone, so a poison request is isolated."""
        oldest = self._pending.popleft()
        if oldest.attempts > 0:
            return [oldest]
        others = sorted(
            (r for r in self._pending if r.attempts == 0),
            key=lambda r: abs(r.length - oldest.length),
        )[: size - 1]
        chosen = {r.id for r in others}
        self._pending = deque(r for r in self._pending if r.id not in chosen)
        return [oldest, *others]

    def _deal(self, hands: int) -> list[list[_Request]]:
        """Split the queue into at most ``hands`` batches of about equal total prompt length
        (prompts run packed, so a batch's prompt work is its total length, not its width). A
        request that was in a crashed batch goes alone, as in _take_batch."""
        if self._pending[0].attempts > 0:
            return [[self._pending.popleft()]]
        fresh = sorted((r for r in self._pending if r.attempts == 0), key=lambda r: r.length)
        self._pending = deque(r for r in self._pending if r.attempts > 0)
        batches: list[list[_Request]] = [[] for _ in range(min(hands, len(fresh)))]
        for index, request in enumerate(fresh):  # back and forth: 0, 1, 1, 0, 0, 1, ...
            lap, seat = divmod(index, len(batches))
            batches[seat if lap % 2 == 0 else len(batches) - 1 - seat].append(request)
        return batches

    def _send(self, slot: _Slot, batch: list[_Request]) -> None:
        slot.batch = batch
        self.stats.batches += 1
        self.stats.batch_sizes[len(batch)] = self.stats.batch_sizes.get(len(batch), 0) + 1
        # If the process is gone, its reader thread sees the exit and re-queues this batch.
        with contextlib.suppress(BrokenPipeError, OSError):
            slot.conn.send(("batch", self.stats.batches, [item.request for item in batch]))

    async def _terminate(self) -> None:
        self._closing = True
        for slot in self._slots:
            with contextlib.suppress(BrokenPipeError, OSError):
                slot.conn.send(None)
        for slot in self._slots:
            await asyncio.to_thread(slot.process.join, 10)
            if slot.process.is_alive():
                slot.process.kill()
                await asyncio.to_thread(slot.process.join, 5)
            slot.conn.close()
