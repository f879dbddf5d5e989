from __future__ import annotations

from pathlib import Path

import pytest

from copyflow.schemas import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("COPYFLOW_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.topics.products == "catalog.products"
    assert settings.topics.products_dlq == "catalog.products.dlq"
    assert settings.kafka.servers() == ["localhost:9092"]
    assert settings.model.name == "smollm2-135m-instruct"


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYFLOW_KAFKA__BOOTSTRAP", "a:9092,b:9093")
    monkeypatch.setenv("COPYFLOW_TOPICS__SUGGESTIONS", "shop.suggestions")
    settings = load_settings()
    assert settings.kafka.servers() == ["a:9092", "b:9093"]
    assert settings.topics.suggestions == "shop.suggestions"


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("COPYFLOW_KAFKA__BOOTSTRAP", "no-port", "kafka.bootstrap (COPYFLOW_KAFKA__BOOTSTRAP)"),
        ("COPYFLOW_MODEL__MAX_NEW_TOKENS", "0", "model.max_new_tokens"),
        ("COPYFLOW_MODEL__MAX_TITLE_TOKENS", "3", "model.max_title_tokens"),
        ("COPYFLOW_MODEL__MAX_DESCRIPTION_TOKENS", "0", "model.max_description_tokens"),
        ("COPYFLOW_POOL__DEVICES", "cpu,tpu", "pool.devices (COPYFLOW_POOL__DEVICES)"),
        ("COPYFLOW_TOPICS__PARTITIONS", "many", "COPYFLOW_TOPICS__PARTITIONS"),
        ("COPYFLOW_MODEL__TEMPERATURE", "0.7", "COPYFLOW_MODEL__TEMPERATURE"),
    ],
)
def test_bad_setting_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert named in str(info.value)


def test_generation_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_settings().model
    assert (model.max_title_tokens, model.max_description_tokens) == (40, 90)
    # The overall cap leaves room for both budgets and the description marker's tokens.
    assert model.max_new_tokens >= model.max_title_tokens + model.max_description_tokens + 8
    assert model.prompt_version == "v3"
    monkeypatch.setenv("COPYFLOW_MODEL__MAX_TITLE_TOKENS", "4")
    monkeypatch.setenv("COPYFLOW_MODEL__MAX_DESCRIPTION_TOKENS", "4")
    model = load_settings().model
    assert (model.max_title_tokens, model.max_description_tokens) == (4, 4)
    for name in ("max_new_tokens", "max_title_tokens", "max_description_tokens"):
        assert model.model_fields[name].description


def test_config_file_is_read_and_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "copyflow.toml"
    config.write_text('[kafka]\nbootstrap = "file:9092"\ngroup_id = "from-file"\n')
    monkeypatch.setenv("COPYFLOW_KAFKA__GROUP_ID", "from-env")
    settings = load_settings(config)
    assert settings.kafka.bootstrap == "file:9092"
    assert settings.kafka.group_id == "from-env"


def test_bad_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[kafka\n")
    with pytest.raises(SettingsError, match=r"bad\.toml"):
        load_settings(config)
    with pytest.raises(SettingsError, match=r"missing\.toml"):
        load_settings(tmp_path / "missing.toml")


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYFLOW_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("COPYFLOW_REDIS__URL", "redis://:s3cret@cache:6379/0")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "s3cret" not in repr(settings)
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "hunter2"
