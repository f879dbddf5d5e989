"""docker-compose.yml cannot run here (no Docker daemon): check it against the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from copyflow.schemas import load_settings
from copyflow.schemas.settings import setting_env_names

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, dict[str, dict[str, object]]]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def copyflow_services() -> dict[str, dict[str, object]]:
    return {name: svc for name, svc in compose()["services"].items() if "build" in svc}


def test_compose_has_the_deployment_services() -> None:
    services = compose()["services"]
    assert {"kafka", "redis", "worker"} <= set(services)
    assert "KRaft" in (REPO / "docker-compose.yml").read_text()
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # type: ignore[index]


def test_copyflow_environment_variables_are_real_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = setting_env_names()
    assert copyflow_services(), "no copyflow service in docker-compose.yml"
    for name, service in copyflow_services().items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict)
        unknown = {key for key in environment if key not in known}
        assert not unknown, f"{name}: not settings: {sorted(unknown)}"
        for key, value in environment.items():
            monkeypatch.setenv(key, str(value))
        load_settings()  # and their values are valid


def test_worker_reserves_a_gpu() -> None:
    worker = compose()["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]  # type: ignore[index]
    assert devices[0]["capabilities"] == ["gpu"]


def test_worker_and_trainer_are_healthy_only_when_ready() -> None:
    services = compose()["services"]
    worker_port = services["worker"]["environment"]["COPYFLOW_METRICS__PORT"]  # type: ignore[index]
    trainer_port = load_settings().trainer.http_port
    for name, port in (("worker", worker_port), ("trainer", trainer_port)):
        test = services[name]["healthcheck"]["test"]  # type: ignore[index]
        assert f"127.0.0.1:{port}/readyz" in " ".join(test), name
