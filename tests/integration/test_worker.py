"""The stream processor end to end through a real broker, with a tiny real model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from copyflow.plugins.transport import dead_letters
from tests.harness import OutputReader, Outputs, WorkerProcess, encoded, produce, product_event

pytestmark = pytest.mark.integration


def malformed_events() -> list[tuple[bytes | None, bytes]]:
    """20 invalid events, four of each kind of problem."""
    broken: list[tuple[bytes | None, bytes]] = []
    for i in range(4):
        broken.append((None, b'{"id": "cut-off", "data": {"product_id": ' + str(i).encode()))
        broken.append((None, b"\xff\xfe not utf-8 " + bytes([i])))
        no_title = product_event(1000 + i)
        del no_title["data"]["title"]  # type: ignore[attr-defined]
        broken.append(encoded(no_title))
        wrong_type = product_event(2000 + i)
        wrong_type["type"] = "product.exploded"
        broken.append(encoded(wrong_type))
        oversized = product_event(3000 + i, description="x" * 20_000)
        broken.append(encoded(oversized))
    return broken


def reader_for(kafka_bootstrap: str, topic_env: dict[str, str]) -> OutputReader:
    return OutputReader(
        kafka_bootstrap,
        topic_env["COPYFLOW_TOPICS__SUGGESTIONS"],
        topic_env["COPYFLOW_TOPICS__PRODUCTS_DLQ"],
        int(topic_env["COPYFLOW_TOPICS__PARTITIONS"]),
    )


def test_valid_events_become_suggestions_and_malformed_become_dead_letters(
    kafka_bootstrap: str,
    topic_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    valid = [encoded(product_event(i, tenant=f"tenant-{i % 3}")) for i in range(200)]
    broken = malformed_events()
    mixed = valid[:]
    for n, item in enumerate(broken):  # spread the bad ones through the stream
        mixed.insert(n * 10 + 5, item)
    worker = start_worker(COPYFLOW_WORKER__MAX_EVENT_BYTES="16384")
    produce(kafka_bootstrap, topic_env["COPYFLOW_TOPICS__PRODUCTS"], mixed)

    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        out = reader.wait_for(
            lambda o: len(o.suggestions) >= 200 and len(o.dead) >= 20, timeout_s=300, worker=worker
        )
    finally:
        reader.close()

    assert len(out.suggestions) == 200
    assert out.product_ids() == {f"p-{i}" for i in range(200)}
    for suggestion in out.suggestions:
        index = int(suggestion.product_id.removeprefix("p-"))
        assert suggestion.tenant == f"tenant-{index % 3}"
        assert suggestion.source_event_id == f"evt-{index}"
        assert suggestion.title.strip()
        assert suggestion.checks and suggestion.checks[0].name == "parsed"

    assert len(out.dead) == 20
    kinds = sorted(letter.headers[dead_letters.KIND] for letter in out.dead)
    assert kinds == sorted(["decode"] * 8 + ["schema"] * 8 + ["oversize"] * 4)
    for letter in out.dead:
        assert letter.headers[dead_letters.REASON]
        assert letter.headers[dead_letters.SOURCE_TOPIC] == topic_env["COPYFLOW_TOPICS__PRODUCTS"]
        assert int(letter.headers[dead_letters.SOURCE_OFFSET]) >= 0
    # The dead letter carries the original bytes untouched.
    assert {letter.value for letter in out.dead} == {value for _, value in broken}
    reasons = " ".join(letter.headers[dead_letters.REASON] for letter in out.dead)
    assert "data.title: Field required" in reasons
    assert "exceeds worker.max_event_bytes=16384" in reasons


def test_suggestion_ids_are_deterministic_across_replays(
    kafka_bootstrap: str,
    topic_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    event = product_event(7)
    again = json.loads(json.dumps(event))
    again["id"] = "evt-7-again"  # same content, a new event
    changed = json.loads(json.dumps(event))
    changed["id"] = "evt-7-changed"
    changed["data"]["title"] = "a different title"
    worker = start_worker(COPYFLOW_CACHE__SKIP_UNCHANGED="false")
    produce(
        kafka_bootstrap,
        topic_env["COPYFLOW_TOPICS__PRODUCTS"],
        [encoded(event), encoded(again), encoded(changed)],
    )
    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        out = reader.wait_for(lambda o: len(o.suggestions) >= 3, timeout_s=120, worker=worker)
    finally:
        reader.close()
    ids = {s.source_event_id: s.suggestion_id for s in out.suggestions}
    assert ids["evt-7"] == ids["evt-7-again"]
    assert ids["evt-7"] != ids["evt-7-changed"]


def test_worker_killed_halfway_loses_no_event(
    kafka_bootstrap: str,
    topic_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    events = [encoded(product_event(i)) for i in range(200)]
    # Batches of 20 that take seconds to generate: the kill below lands mid-batch, where
    # committing before publishing would lose that batch.
    slow = {
        "COPYFLOW_WORKER__TAKE_BATCH": "20",
        "COPYFLOW_MODEL__BATCH_SIZE": "20",
        "COPYFLOW_MODEL__MAX_NEW_TOKENS": "256",
    }
    first = start_worker(**slow)
    produce(kafka_bootstrap, topic_env["COPYFLOW_TOPICS__PRODUCTS"], events)
    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        reader.wait_for(lambda o: len(o.product_ids()) >= 100, timeout_s=300, worker=first)
        time.sleep(1.5)  # the next batch is generating now
        first.kill()
        assert len(reader.poll().product_ids()) < 200, "the kill came too late to test anything"

        second = start_worker(**slow)
        out: Outputs = reader.wait_for(
            lambda o: len(o.product_ids()) == 200, timeout_s=300, worker=second
        )
    finally:
        reader.close()
    assert out.product_ids() == {f"p-{i}" for i in range(200)}
    # At-least-once: a replayed event republishes the same suggestion id, never a new one.
    ids_per_product: dict[str, set[str]] = {}
    for suggestion in out.suggestions:
        ids_per_product.setdefault(suggestion.product_id, set()).add(str(suggestion.suggestion_id))
    assert all(len(ids) == 1 for ids in ids_per_product.values())


def test_sigterm_stops_cleanly_and_a_restart_finishes_the_work(
    kafka_bootstrap: str,
    topic_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    events = [encoded(product_event(i)) for i in range(100)]
    slow = {"COPYFLOW_WORKER__TAKE_BATCH": "20", "COPYFLOW_MODEL__MAX_NEW_TOKENS": "128"}
    first = start_worker(**slow)
    produce(kafka_bootstrap, topic_env["COPYFLOW_TOPICS__PRODUCTS"], events)
    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        reader.wait_for(lambda o: len(o.product_ids()) >= 20, timeout_s=300, worker=first)
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(timeout=120) == 0, first.log_tail()
        assert "Traceback" not in first.log.read_text(), first.log_tail()

        second = start_worker(**slow)
        out = reader.wait_for(lambda o: len(o.product_ids()) == 100, timeout_s=300, worker=second)
    finally:
        reader.close()
    assert out.product_ids() == {f"p-{i}" for i in range(100)}


def test_a_model_that_cannot_load_stops_the_worker_with_a_clear_error(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "copyflow", "worker"],
        env={**worker_env, "COPYFLOW_MODEL__NAME": str(not_a_model)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "the generator processes could not start: worker on cpu" in done.stderr
    assert "COPYFLOW_MODEL__NAME" in done.stderr
    assert "Traceback" not in done.stderr


def test_copy_that_improves_nothing_is_not_published(
    kafka_bootstrap: str,
    topic_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """With checks.skip_unimproved (the default) a product whose title and description no
    candidate improves publishes nothing; a messy one gets its suggestion."""
    good = {
        "title": "Testbrand Blue Cotton Shirt",
        "description": "A blue cotton shirt from Testbrand, made for everyday wear.",
    }
    events = [encoded(product_event(i, **good)) for i in range(5)]
    events += [encoded(product_event(i)) for i in range(5, 10)]  # lower case, brand missing
    worker = start_worker(COPYFLOW_CHECKS__SKIP_UNIMPROVED="true")
    produce(kafka_bootstrap, topic_env["COPYFLOW_TOPICS__PRODUCTS"], events)

    reader = reader_for(kafka_bootstrap, topic_env)
    try:
        out = reader.wait_for(lambda o: len(o.suggestions) >= 5, timeout_s=300, worker=worker)
        time.sleep(5)  # the unimproved ones would have been in the same batches
        out = reader.wait_for(lambda o: True, timeout_s=5, worker=worker)
    finally:
        reader.close()
    assert out.product_ids() == {f"p-{i}" for i in range(5, 10)}
    for suggestion in out.suggestions:
        assert suggestion.improved is True
        assert suggestion.title.startswith("Testbrand ")
        assert suggestion.title_source in ("composed", "cleaned", "model", "repaired")
    assert worker.process.poll() is None
