"""Test harness: real services and a tiny real model.

Broker: COPYFLOW_KAFKA__BOOTSTRAP if set; else a Kafka container when a Docker daemon answers
its ping; else the bundled tansu broker on a free port. Redis: COPYFLOW_REDIS__URL if set; else
a Redis container when Docker answers; else a redis-server on a free port. Every process a
fixture starts is ended by that fixture, by its pid, also when the test fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from copyflow.embedded import (
    TANSU_GROUP_ENV,
    EmbeddedBroker,
)
from tests.harness import RedisServer, WorkerProcess, make_tiny_model

REPO = Path(__file__).resolve().parent.parent


def docker_answers() -> bool:
    """Ask the daemon, not the PATH: the docker client exists on machines with no daemon."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    existing = os.environ.get("COPYFLOW_KAFKA__BOOTSTRAP")
    if existing:
        yield existing
    elif docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
    else:
        with EmbeddedBroker() as broker:
            yield broker.bootstrap


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    existing = os.environ.get("COPYFLOW_REDIS__URL")
    if existing:
        yield existing
    elif docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as redis:
            yield f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
    else:
        yield from _local_redis()


def _local_redis() -> Iterator[str]:
    try:
        server = RedisServer().start()
    except RuntimeError as exc:
        pytest.fail(f"no Redis: set COPYFLOW_REDIS__URL, run Docker, or {exc}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop, pause and restart."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Iterator[Path]:
    """A random 2-layer Llama with the SmolLM2 tokenizer: real transformers code, fast."""
    directory = Path(tempfile.mkdtemp(prefix="copyflow-tiny-"))
    try:
        yield make_tiny_model(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def topic_env() -> dict[str, str]:
    """Topic names and a consumer group of this test's own, on a shared broker."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "COPYFLOW_KAFKA__GROUP_ID": f"copyflow-test-{suffix}",
        "COPYFLOW_TOPICS__PRODUCTS": f"products-{suffix}",
        "COPYFLOW_TOPICS__PRODUCTS_DLQ": f"products-dlq-{suffix}",
        "COPYFLOW_TOPICS__SUGGESTIONS": f"suggestions-{suffix}",
        "COPYFLOW_TOPICS__FEEDBACK": f"feedback-{suffix}",
        "COPYFLOW_TOPICS__FEEDBACK_DLQ": f"feedback-dlq-{suffix}",
        "COPYFLOW_TOPICS__CONTROL": f"control-{suffix}",
        "COPYFLOW_TOPICS__PARTITIONS": "4",
        "COPYFLOW_CACHE__PREFIX": f"copyflow-test-{suffix}",
    }


@pytest.fixture
def worker_env(
    kafka_bootstrap: str,
    redis_url: str,
    tiny_model_dir: Path,
    topic_env: dict[str, str],
    tmp_path: Path,
) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("COPYFLOW_")},
        **TANSU_GROUP_ENV,
        **topic_env,
        "COPYFLOW_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "COPYFLOW_REDIS__URL": redis_url,
        "COPYFLOW_METRICS__PORT": "0",
        "COPYFLOW_TRAINER__HTTP_PORT": "0",
        "COPYFLOW_MODEL__NAME": str(tiny_model_dir),
        "COPYFLOW_MODEL__MAX_NEW_TOKENS": "16",
        # These tests count one suggestion per event; the skip of unimproved copy has its own.
        "COPYFLOW_CHECKS__SKIP_UNIMPROVED": "false",
        "COPYFLOW_WORKER__DATA_DIR": str(tmp_path / "worker-data"),
        "PYTHONPATH": str(REPO),
    }


@pytest.fixture
def start_worker(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `copyflow worker` processes; each is stopped by pid at teardown, pass or fail."""
    started: list[WorkerProcess] = []

    def start(**extra_env: str) -> WorkerProcess:
        worker = WorkerProcess({**worker_env, **extra_env}, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
