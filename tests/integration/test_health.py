"""/readyz of a real worker: ready once it can commit; not ready while its broker does not
answer, ready again when it does; /healthz answers throughout."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from copyflow.embedded import EmbeddedBroker, free_port
from tests.harness import WorkerProcess

pytestmark = pytest.mark.integration


def get(port: int, path: str) -> tuple[int, dict[str, object] | str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            body = answer.read().decode()
            status = answer.status
    except urllib.error.HTTPError as error:
        body, status = error.read().decode(), error.code
    except OSError:
        return 0, "no answer"
    return status, json.loads(body) if path == "/readyz" else body


def wait_for_status(
    port: int, wanted: int, worker: WorkerProcess, timeout_s: float
) -> dict[str, object]:
    """Poll /readyz until it answers wanted; the worker (or trainer) must stay up."""
    deadline = time.monotonic() + timeout_s
    last: tuple[int, object] = (0, "")
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, worker.log_tail()
        last = get(port, "/readyz")
        if last[0] == wanted:
            assert isinstance(last[1], dict)
            return last[1]
        time.sleep(0.3)
    raise AssertionError(f"/readyz never answered {wanted}; last {last}\n{worker.log_tail()}")


def test_readyz_turns_not_ready_while_the_broker_is_stopped_and_back(
    start_worker: Callable[..., WorkerProcess],
) -> None:
    port = free_port()
    with EmbeddedBroker() as broker:
        worker = start_worker(
            COPYFLOW_KAFKA__BOOTSTRAP=broker.bootstrap, COPYFLOW_METRICS__PORT=str(port)
        )
        ready = wait_for_status(port, 200, worker, timeout_s=120)
        checks = ready["checks"]
        assert isinstance(checks, dict)
        assert checks["partitions"]["ok"] and checks["generator_pool"]["ok"]
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)
        try:
            stopped = wait_for_status(port, 503, worker, timeout_s=60)
            checks = stopped["checks"]
            assert isinstance(checks, dict) and not checks["broker"]["ok"]
            assert get(port, "/healthz") == (200, "ok\n")  # alive, just not ready
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        wait_for_status(port, 200, worker, timeout_s=120)
        assert "copyflow_pool_capacity" in str(get(port, "/metrics")[1])


def test_the_trainer_is_ready_once_its_feedback_group_is_joined(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **worker_env,
        "COPYFLOW_TRAINER__STORE_DIR": str(tmp_path / "examples"),
        "COPYFLOW_TRAINER__REGISTRY_DIR": str(tmp_path / "adapters"),
        "COPYFLOW_TRAINER__GROUP_ID": f"{worker_env['COPYFLOW_KAFKA__GROUP_ID']}-trainer",
        "COPYFLOW_TRAINER__HTTP_PORT": str(port),
    }
    trainer = WorkerProcess(env, tmp_path / "trainer.log", command="trainer")
    try:
        ready = wait_for_status(port, 200, trainer, timeout_s=120)
        checks = ready["checks"]
        assert isinstance(checks, dict)
        assert checks["partitions"]["ok"] and checks["training"]["detail"] == "idle"
        assert get(port, "/healthz") == (200, "ok\n")
        trainer.process.send_signal(signal.SIGTERM)
        assert trainer.process.wait(60) == 0, trainer.log_tail()
    finally:
        trainer.stop()
