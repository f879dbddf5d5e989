"""The scenarios: each starts a cluster of its own, injects its fault and returns its verdict."""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.chaos.cluster import (
    Cluster,
    Verdict,
    generator_pids,
    pause,
    resume,
    send_signal,
)
from tests.harness import WorkerProcess, encoded, product_event


@dataclass(frozen=True)
class Size:
    events: int  # valid events sent at the start
    kills: int  # SIGKILLs in the kill loop
    fault_s: float  # how long a broker pause, a Redis outage or a hung generator lasts
    malformed: int  # malformed events among the valid ones
    timeout_s: float = 900  # for the whole of a scenario's events to be committed


DEFAULT = Size(events=3000, kills=20, fault_s=20, malformed=1000)
SMALL = Size(events=150, kills=2, fault_s=3, malformed=40, timeout_s=300)

# A worker as it runs in production: a name of its own, kept across restarts.
STATIC = {"COPYFLOW_KAFKA__GROUP_INSTANCE_ID": "chaos-worker-0"}


def _first_commit(cluster: Cluster, worker: WorkerProcess, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while cluster.committed() == 0:
        if worker.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the worker committed nothing\n{worker.log_tail()}")
        time.sleep(0.2)


def sigkill_loop(size: Size) -> Verdict:
    """SIGKILL the worker (and its generator processes) mid-batch, again and again; each time
    a new one starts under the same name. Records restart -> first committed batch."""
    rng = random.Random(7)
    with Cluster("sigkill-loop", COPYFLOW_WORKER__TAKE_BATCH="20", **STATIC) as cluster:
        cluster.send_products(size.events)
        worker = cluster.start_worker()
        _first_commit(cluster, worker)
        for _ in range(size.kills):
            time.sleep(rng.uniform(1.0, 3.0))
            cluster.keep_busy()
            cluster.kill(worker)
            worker = cluster.restart()
        cluster.wait_until_done(size.timeout_s)
        return cluster.verdict()


def _fault_mid_run(
    name: str, size: Size, fault: Callable[[Cluster, WorkerProcess], None]
) -> Verdict:
    """One worker over size.events events; fault() strikes once it has committed a batch
    while events are left, and every event is then verified."""
    with Cluster(name) as cluster:
        cluster.send_products(size.events)
        worker = cluster.start_worker(**STATIC)
        _first_commit(cluster, worker)
        cluster.require_work_left()
        fault(cluster, worker)
        cluster.wait_until_done(size.timeout_s)
        return cluster.verdict()


def broker_pause(size: Size) -> Verdict:
    """The broker stops answering (SIGSTOP) for fault_s mid-run, then comes back."""

    def fault(cluster: Cluster, worker: WorkerProcess) -> None:
        assert cluster.broker.pid is not None
        pause(cluster.broker.pid)
        time.sleep(size.fault_s)
        resume(cluster.broker.pid)

    return _fault_mid_run("broker-pause", size, fault)


def redis_outage(size: Size) -> Verdict:
    """Redis stops for fault_s mid-run and starts again, empty, on the same port."""

    def fault(cluster: Cluster, worker: WorkerProcess) -> None:
        cluster.redis.stop()
        time.sleep(size.fault_s)
        cluster.redis.start()

    return _fault_mid_run("redis-outage", size, fault)


def hung_generator(size: Size) -> Verdict:
    """The generator processes stop (SIGSTOP) for fault_s mid-batch, then go on."""

    def fault(cluster: Cluster, worker: WorkerProcess) -> None:
        hung = generator_pids(worker)
        for pid in hung:
            pause(pid)
        time.sleep(size.fault_s)
        for pid in hung:
            resume(pid)

    return _fault_mid_run("hung-generator", size, fault)


def crashing_generator(size: Size) -> Verdict:
    """The generator processes are SIGKILLed mid-batch, three times; the worker lives on."""

    def fault(cluster: Cluster, worker: WorkerProcess) -> None:
        for _ in range(3):
            for pid in generator_pids(worker):
                send_signal(pid, signal.SIGKILL)
            time.sleep(2)

    return _fault_mid_run("crashing-generator", size, fault)


def two_workers(size: Size) -> Verdict:
    """Two workers share the group; one is killed and restarted, the other stopped with
    SIGTERM and restarted, while both work."""
    with Cluster("two-workers", COPYFLOW_WORKER__TAKE_BATCH="20") as cluster:
        cluster.send_products(size.events)
        first = cluster.start_worker(COPYFLOW_KAFKA__GROUP_INSTANCE_ID="chaos-a")
        second = cluster.start_worker(COPYFLOW_KAFKA__GROUP_INSTANCE_ID="chaos-b")
        _first_commit(cluster, first)
        time.sleep(2)  # both have joined
        # Not timed: the other worker's commits would count as the restarted one's.
        cluster.keep_busy()
        cluster.kill(first)
        cluster.start_worker(COPYFLOW_KAFKA__GROUP_INSTANCE_ID="chaos-a")
        time.sleep(2)
        cluster.keep_busy()
        second.process.send_signal(signal.SIGTERM)
        second.process.wait(120)
        cluster.start_worker(COPYFLOW_KAFKA__GROUP_INSTANCE_ID="chaos-b")
        cluster.wait_until_done(size.timeout_s)
        return cluster.verdict()


def malformed_corpus(size: Size) -> Verdict:
    """Malformed events of every kind among valid ones: each becomes a dead letter."""
    with Cluster("malformed") as cluster:
        bad = malformed(size.malformed)
        good = [encoded(product_event(i)) for i in range(size.events)]
        mixed = [record for pair in zip(good, bad, strict=False) for record in pair]
        mixed += good[len(bad) :] + bad[len(good) :]
        cluster.send(mixed)
        cluster.start_worker(**STATIC)
        cluster.wait_until_done(size.timeout_s)
        return cluster.verdict()


def malformed(count: int) -> list[tuple[bytes | None, bytes]]:
    """count malformed events, cycling through the kinds a catalog's topic can carry."""
    rng = random.Random(11)
    kinds: list[Callable[[int], bytes]] = [
        lambda i: rng.randbytes(rng.randint(1, 300)),  # random bytes
        lambda i: json.dumps(product_event(100_000 + i))[: rng.randint(1, 80)].encode(),
        lambda i: b"\xff\xfe" + json.dumps(product_event(100_000 + i)).encode(),  # not UTF-8
        lambda i: json.dumps({**product_event(100_000 + i), "data": "a string"}).encode(),
        lambda i: json.dumps({**product_event(100_000 + i), "type": "product.exploded"}).encode(),
        lambda i: json.dumps(product_event(100_000 + i, title=12345)).encode(),  # wrong type
        lambda i: json.dumps(
            product_event(100_000 + i, attributes={f"k{n}": "v" * 50 for n in range(2000)})
        ).encode(),  # a huge map
        lambda i: json.dumps([1, 2, 3]).encode(),  # JSON, not an object
        lambda i: b"",  # empty
    ]
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(count):
        value = kinds[i % len(kinds)](i)
        records.append((f"bad-{i}".encode(), value))
    return records


SCENARIOS: dict[str, Callable[[Size], Verdict]] = {
    "sigkill-loop": sigkill_loop,
    "broker-pause": broker_pause,
    "redis-outage": redis_outage,
    "hung-generator": hung_generator,
    "crashing-generator": crashing_generator,
    "two-workers": two_workers,
    "malformed": malformed_corpus,
}
