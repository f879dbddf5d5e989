"""`copyflow replay` and `copyflow backfill` through the real broker, with the tiny model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from copyflow.schemas import Suggestion
from tests.harness import OutputReader, WorkerProcess, encoded, produce, product_event

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# The shared product data sits beside the checkout (../shared/data) on these machines.
DATA_DIRS = [Path(p) for p in os.environ.get("COPYFLOW_TEST_DATA", "").split(":") if p] + [
    REPO.parent / "shared" / "data",
    Path("/work/shared/data"),
]
ALL_GENERATED = {
    "read": 1000,
    "generated": 1000,
    "cache hits": 0,
    "skipped": 0,
    "not improved": 0,
    "dead letters": 0,
}
BASE_MS = 1_790_000_000_000  # the first event's broker timestamp; one event per second after


def at(index: int) -> str:
    return datetime.fromtimestamp((BASE_MS + index * 1000) / 1000, UTC).isoformat()


def produce_history(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for index in range(count):
        key, value = encoded(product_event(index, tenant=f"shop-{index % 2}"))
        producer.send(topic, key=key, value=value, timestamp_ms=BASE_MS + index * 1000)
    producer.flush()
    producer.close()


class RunOutputs:
    """Suggestions on the topic, by the run header that names their run."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.consumer.assign([TopicPartition(topic, p) for p in range(4)])
        self.consumer.seek_to_beginning()
        self.by_run: dict[str, list[Suggestion]] = {}

    def read(self, settle_s: float = 2.0) -> dict[str, list[Suggestion]]:
        """Everything so far: reads until nothing new came for settle_s."""
        quiet_until = time.monotonic() + settle_s
        while time.monotonic() < quiet_until:
            if self.poll():
                quiet_until = time.monotonic() + settle_s
        return self.by_run

    def poll(self) -> int:
        count = 0
        for records in self.consumer.poll(timeout_ms=300).values():
            for record in records:
                run = dict(record.headers).get("copyflow.run", b"live").decode()
                suggestion = Suggestion.model_validate_json(record.value)
                self.by_run.setdefault(run, []).append(suggestion)
                count += 1
        return count


def copyflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "copyflow", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """'read 1000, generated 990, cache hits 10, ...' as numbers by name."""
    line = [text for text in result.stdout.splitlines() if text.startswith("read ")][-1]
    counts = {}
    for part in line.split(", "):
        words = part.split(" (")[0].rsplit(" ", 1)
        counts[words[0]] = int(words[1])
    return counts


@pytest.fixture
def history(worker_env: dict[str, str], kafka_bootstrap: str) -> str:
    topic = worker_env["COPYFLOW_TOPICS__PRODUCTS"]
    assert copyflow(worker_env, "replay", "--from", at(0), "--dry-run").returncode == 2
    produce_history(kafka_bootstrap, topic, 3000)
    return topic


def test_a_window_is_processed_exactly_and_again_with_the_same_ids(
    worker_env: dict[str, str], kafka_bootstrap: str, history: str
) -> None:
    outputs = RunOutputs(kafka_bootstrap, worker_env["COPYFLOW_TOPICS__SUGGESTIONS"])
    window = ["replay", "--from", at(1000), "--to", at(2000)]

    dry = copyflow(worker_env, *window, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1000 events in the window" in dry.stdout
    assert "tenant shop-0: 500 events" in dry.stdout and "tenant shop-1: 500 events" in dry.stdout

    first = copyflow(worker_env, *window)
    assert first.returncode == 0, first.stderr
    assert summary(first) == ALL_GENERATED
    runs = outputs.read()
    [made] = runs.values()
    assert sorted(s.product_id for s in made) == sorted(f"p-{i}" for i in range(1000, 2000))

    # The same command again: its run is complete, so nothing is read.
    again = copyflow(worker_env, *window)
    assert again.returncode == 0 and summary(again)["read"] == 0

    # --force regenerates although everything is cached, and the ids are the same.
    forced = copyflow(worker_env, *window, "--force")
    assert summary(forced) == ALL_GENERATED
    runs = outputs.read()
    assert len(runs) == 2
    first_ids, forced_ids = (
        {s.suggestion_id for s in suggestions} for suggestions in runs.values()
    )
    assert first_ids == forced_ids and len(first_ids) == 1000

    # Started over without --force: every event's content was published already.
    restarted = copyflow(worker_env, *window, "--restart", "--tenant", "shop-1")
    assert summary(restarted) == {
        "read": 1000,
        "generated": 0,
        "cache hits": 0,
        "skipped": 500,
        "not improved": 0,
        "other tenants": 500,
        "dead letters": 0,
    }


def test_an_interrupted_replay_resumes_and_processes_each_event_once(
    worker_env: dict[str, str], kafka_bootstrap: str, history: str, tmp_path: Path
) -> None:
    outputs = RunOutputs(kafka_bootstrap, worker_env["COPYFLOW_TOPICS__SUGGESTIONS"])
    command = [
        sys.executable,
        "-m",
        "copyflow",
        "replay",
        "--from",
        at(500),
        "--to",
        at(1500),
        "--force",
        "--rate",
        "150",
    ]
    log = tmp_path / "replay.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=worker_env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while sum(len(s) for s in outputs.by_run.values()) < 300:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        outputs.poll()
    process.send_signal(signal.SIGINT)
    assert process.wait(120) == 130, log.read_text()[-3000:]
    stopped = [line for line in log.read_text().splitlines() if line.startswith("read ")][-1]
    first_read = int(stopped.split(",")[0].split()[1])
    assert 300 <= first_read < 1000

    resumed = copyflow(worker_env, *command[3:])
    assert resumed.returncode == 0, resumed.stderr
    assert first_read + summary(resumed)["read"] == 1000
    per_product = Counter(s.product_id for s in outputs.read()[next(iter(outputs.by_run))])
    assert set(per_product) == {f"p-{i}" for i in range(500, 1500)}
    assert set(per_product.values()) == {1}  # --force: a repeated event would show twice


def test_live_processing_continues_during_a_replay(
    worker_env: dict[str, str],
    kafka_bootstrap: str,
    history: str,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    command = ["replay", "--from", at(0), "--to", at(1000), "--rate", "10"]
    log = tmp_path / "replay.log"
    with log.open("w") as out:
        replaying = subprocess.Popen(
            [sys.executable, "-m", "copyflow", *command],
            env=worker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    worker = start_worker()
    reader = OutputReader(
        kafka_bootstrap,
        worker_env["COPYFLOW_TOPICS__SUGGESTIONS"],
        worker_env["COPYFLOW_TOPICS__PRODUCTS_DLQ"],
        4,
    )
    # The live worker (a new group: it also works through the history) publishes new events
    # while the slow replay is still running in its own group.
    live = [product_event(10_000 + i, tenant="live") for i in range(20)]
    produce(kafka_bootstrap, history, (encoded(event) for event in live))
    outputs = reader.wait_for(
        lambda o: {f"p-{10_000 + i}" for i in range(20)} <= o.product_ids(), 240, worker
    )
    assert replaying.poll() is None, "the replay should still be running"
    assert {s.tenant for s in outputs.suggestions} >= {"live"}
    replaying.send_signal(signal.SIGINT)
    assert replaying.wait(120) == 130, log.read_text()[-3000:]
    reader.close()


def test_a_backfill_of_5000_products_converts_the_file_and_sums_up(
    worker_env: dict[str, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    found = [
        d / "fashion_styles.jsonl" for d in DATA_DIRS if (d / "fashion_styles.jsonl").is_file()
    ]
    if not found:
        pytest.skip(f"fashion_styles.jsonl is in none of {DATA_DIRS} (set COPYFLOW_TEST_DATA)")
    fashion = found[0]
    catalog = tmp_path / "catalog.jsonl"
    with fashion.open() as source, catalog.open("w") as target:
        for _, line in zip(range(5000), source, strict=False):
            target.write(line)
        target.write('{"id": "broken"}\n')  # no title: reported by line, not processed
    outputs = RunOutputs(kafka_bootstrap, worker_env["COPYFLOW_TOPICS__SUGGESTIONS"])
    started = time.monotonic()
    result = copyflow(
        worker_env, "backfill", "--file", str(catalog), "--tenant", "fashion", "--rate", "1000"
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr  # 1: some lines were bad
    assert f"{catalog}:5001: " in result.stderr
    counts = summary(result)
    assert counts["read"] == 5000 and counts["bad lines"] == 1
    made = [
        s for run, items in outputs.read().items() if run.startswith("backfill-") for s in items
    ]
    assert counts["generated"] + counts["cache hits"] == len(made)
    assert (
        counts["generated"] + counts["cache hits"] + counts["skipped"] + counts["dead letters"]
        == 5000
    )
    assert {s.tenant for s in made} == {"fashion"}
    assert elapsed >= 5000 / 1000  # the rate limit held
    again = copyflow(worker_env, "backfill", "--file", str(catalog), "--tenant", "fashion")
    assert summary(again)["read"] == 0  # complete: a second run has nothing left to do
    json.loads(json.dumps(counts))
