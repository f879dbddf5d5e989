"""What a chaos scenario drives: a broker and a Redis it may pause or stop, workers it may kill,
the events it sent, and a verifier of every one of them against the outputs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from copyflow.embedded import TANSU_GROUP_ENV, EmbeddedBroker
from tests.harness import RedisServer, WorkerProcess, encoded, make_tiny_model, product_event

PARTITIONS = 4


@dataclass
class Verdict:
    """One scenario's row of the table."""

    scenario: str
    events: int
    suggestions: int
    dead_letters: int
    lost: int
    duplicates: int
    crashes: int
    restart_s: list[float] = field(default_factory=list)  # restart -> first committed batch
    crash_logs: list[str] = field(default_factory=list, repr=False)

    def as_row(self) -> dict[str, object]:
        restarts = sorted(self.restart_s)
        p95 = restarts[min(len(restarts) - 1, int(0.95 * len(restarts)))] if restarts else None
        return {
            "scenario": self.scenario,
            "events in": self.events,
            "suggestions": self.suggestions,
            "dead letters": self.dead_letters,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "crashes": self.crashes,
            "restarts": len(restarts),
            "restart->commit p50 s": restarts[len(restarts) // 2] if restarts else None,
            "p95 s": p95,
            "max s": restarts[-1] if restarts else None,
        }


class Cluster:
    """A broker, a Redis and a tiny model of the scenario's own; workers started from it."""

    def __init__(self, name: str, **worker_env: str) -> None:
        self.name = name
        self.directory = Path(tempfile.mkdtemp(prefix=f"copyflow-chaos-{name}-"))
        self.broker = EmbeddedBroker(self.directory / "broker.log")
        self.redis = RedisServer()
        suffix = uuid.uuid4().hex[:8]
        self.group = f"chaos-{suffix}"
        self.products = f"products-{suffix}"
        self.suggestions = f"suggestions-{suffix}"
        self.dlq = f"products-dlq-{suffix}"
        self.extra_env = worker_env
        self.workers: list[WorkerProcess] = []
        self.sent: list[tuple[bytes | None, bytes]] = []
        self.restart_s: list[float] = []
        self._next_product = 0

    def __enter__(self) -> Cluster:
        self.broker.start()
        self.redis.start()
        make_tiny_model(self.directory / "model")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        keep = exc is not None or bool(self.crashed())  # a failed scenario keeps its logs
        for worker in self.workers:
            worker.stop()
        self.redis.stop()
        self.broker.stop()
        if not keep:
            shutil.rmtree(self.directory, ignore_errors=True)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("COPYFLOW_")},
            **TANSU_GROUP_ENV,
            "COPYFLOW_KAFKA__BOOTSTRAP": self.broker.bootstrap,
            "COPYFLOW_KAFKA__GROUP_ID": self.group,
            "COPYFLOW_REDIS__URL": self.redis.url,
            "COPYFLOW_TOPICS__PRODUCTS": self.products,
            "COPYFLOW_TOPICS__SUGGESTIONS": self.suggestions,
            "COPYFLOW_TOPICS__PRODUCTS_DLQ": self.dlq,
            "COPYFLOW_TOPICS__FEEDBACK": f"feedback-{self.group}",
            "COPYFLOW_TOPICS__FEEDBACK_DLQ": f"feedback-dlq-{self.group}",
            "COPYFLOW_TOPICS__CONTROL": f"control-{self.group}",
            "COPYFLOW_TOPICS__PARTITIONS": str(PARTITIONS),
            "COPYFLOW_CACHE__PREFIX": self.group,
            "COPYFLOW_METRICS__PORT": "0",
            "COPYFLOW_TRAINER__HTTP_PORT": "0",
            "COPYFLOW_MODEL__NAME": str(self.directory / "model"),
            "COPYFLOW_MODEL__MAX_NEW_TOKENS": "16",
            "COPYFLOW_CHECKS__SKIP_UNIMPROVED": "false",
            "COPYFLOW_WORKER__DATA_DIR": str(self.directory / "worker-data"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            **self.extra_env,
            **extra,
        }

    # -- workers --------------------------------------------------------------------------

    def start_worker(self, **extra: str) -> WorkerProcess:
        log = self.directory / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(self.env(**extra), log)
        self.workers.append(worker)
        return worker

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL the worker and its generator processes (as a lost machine would)."""
        children = child_pids(worker.pid)
        worker.kill()
        for pid in children:
            send_signal(pid, signal.SIGKILL)

    def restart(self, **extra: str) -> WorkerProcess:
        """A new worker; records the seconds until the group commits past where it stood
        (more events are sent first if too few are left for it to commit)."""
        self.keep_busy()
        before = self.committed()
        worker = self.start_worker(**extra)
        started = time.monotonic()
        while self.committed() <= before:
            if worker.process.poll() is not None:  # counted by crashed()
                return worker
            if time.monotonic() - started > 300:
                raise AssertionError(f"no commit 300 s after a restart\n{worker.log_tail()}")
            time.sleep(0.1)
        self.restart_s.append(round(time.monotonic() - started, 2))
        return worker

    def crashed(self) -> list[str]:
        """Workers that exited by themselves or failed to stop cleanly (SIGKILLed ones
        excepted), each with its exit code and the end of its log."""
        return [
            f"{worker.log.name} exited {code}:\n{worker.log_tail(20)}"
            for worker in self.workers
            if (code := worker.process.poll()) not in (None, 0, -signal.SIGKILL)
        ]

    # -- events ---------------------------------------------------------------------------

    def send_products(self, count: int) -> None:
        """count valid events for products not sent before (no two share content, so none
        is skipped as unchanged)."""
        start = self._next_product
        self._next_product += count
        self.send([encoded(product_event(i)) for i in range(start, start + count)])

    def keep_busy(self) -> None:
        """Send more events when fewer than a few batches' worth are left uncommitted, so a
        fault or a restart lands while there is work."""
        if self.committed() > len(self.sent) - 100:
            self.send_products(300)

    def require_work_left(self) -> None:
        """Before a fault: it must land while events are still being processed."""
        left = len(self.sent) - self.committed()
        assert left > 0, "every event was committed before the fault: it would test nothing"

    def send(self, messages: list[tuple[bytes | None, bytes]]) -> None:
        producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, acks="all")
        try:
            for key, value in messages:
                producer.send(self.products, key=key, value=value)
            producer.flush()
        finally:
            producer.close()
        self.sent.extend(messages)

    def committed(self) -> int:
        """The group's committed offsets, summed over the input topic's partitions."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.broker.bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
        )
        try:
            total = 0
            for partition in range(PARTITIONS):
                total += consumer.committed(TopicPartition(self.products, partition)) or 0
            return total
        finally:
            consumer.close(autocommit=False)

    def wait_until_done(self, timeout_s: float) -> None:
        """Until the group has committed every event sent."""
        deadline = time.monotonic() + timeout_s
        while self.committed() < len(self.sent):
            if time.monotonic() > deadline:
                tails = "\n".join(w.log_tail(15) for w in self.workers[-2:])
                raise AssertionError(f"{self.committed()}/{len(self.sent)} committed\n{tails}")
            time.sleep(0.5)

    def verdict(self) -> Verdict:
        """Every event sent against the suggestions and dead letters: each valid event has a
        suggestion naming it, each invalid one a dead letter carrying it."""
        consumer = KafkaConsumer(bootstrap_servers=self.broker.bootstrap, enable_auto_commit=False)
        consumer.assign(
            [TopicPartition(t, p) for t in (self.suggestions, self.dlq) for p in range(PARTITIONS)]
        )
        consumer.seek_to_beginning()
        made: Counter[str] = Counter()
        dead: Counter[tuple[bytes | None, bytes]] = Counter()
        quiet = 0
        while quiet < 3:
            batch = consumer.poll(timeout_ms=1000)
            quiet = quiet + 1 if not batch else 0
            for records in batch.values():
                for record in records:
                    if record.topic == self.suggestions:
                        made[json.loads(record.value)["source_event_id"]] += 1
                    else:
                        dead[(record.key, record.value)] += 1
        consumer.close()
        lost = 0
        for key, value in self.sent:
            if not (made.get(_event_id(value) or "", 0) or dead.get((key, value), 0)):
                lost += 1
        crashed = self.crashed()
        return Verdict(
            scenario=self.name,
            events=len(self.sent),
            suggestions=sum(made.values()),
            dead_letters=sum(dead.values()),
            lost=lost,
            duplicates=sum(n - 1 for n in made.values()) + sum(n - 1 for n in dead.values()),
            crashes=len(crashed),
            restart_s=self.restart_s,
            crash_logs=crashed,
        )


def _event_id(value: bytes) -> str | None:
    try:
        event = json.loads(value)
    except ValueError:
        return None
    found = event.get("id") if isinstance(event, dict) else None
    return found if isinstance(found, str) else None


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is pid (a worker's generator processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def generator_pids(worker: WorkerProcess) -> list[int]:
    """The worker's generator processes (its multiprocessing children, not the tracker)."""
    pids = []
    for pid in child_pids(worker.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command:
            pids.append(pid)
    return pids


def send_signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def pause(pid: int) -> None:
    send_signal(pid, signal.SIGSTOP)


def resume(pid: int) -> None:
    send_signal(pid, signal.SIGCONT)
