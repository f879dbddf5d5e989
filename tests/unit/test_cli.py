"""The command line as a user meets it: exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copyflow.cli import main
from copyflow.schemas import Suggestion

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("COPYFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_bad_setting_fails_at_start_with_its_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COPYFLOW_WORKER__TAKE_BATCH", "-3")
    assert main(["worker"]) == 2
    assert "worker.take_batch (COPYFLOW_WORKER__TAKE_BATCH)" in capsys.readouterr().err


def test_unknown_prompt_version_names_its_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("COPYFLOW_MODEL__PROMPT_VERSION", "v9")
    assert main(["generate", "--input", str(REPO / "examples" / "catalog.jsonl")]) == 2
    assert "COPYFLOW_MODEL__PROMPT_VERSION" in capsys.readouterr().err


def test_unloadable_model_names_its_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    monkeypatch.setenv("COPYFLOW_MODEL__NAME", str(empty))
    assert main(["generate", "--input", str(REPO / "examples" / "catalog.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "model.name (COPYFLOW_MODEL__NAME): cannot load model" in err


def test_generate_writes_one_suggestion_per_valid_product(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_model_dir: Path,
) -> None:
    monkeypatch.setenv("COPYFLOW_MODEL__NAME", str(tiny_model_dir))
    monkeypatch.setenv("COPYFLOW_MODEL__MAX_NEW_TOKENS", "8")
    products = tmp_path / "products.jsonl"
    products.write_text(
        json.dumps({"product_id": "a", "title": "red mug"})
        + "\n"
        + "\n"
        + "{broken\n"
        + json.dumps({"product_id": "b", "title": "blue lamp", "channels": ["amazon", "ebay"]})
        + "\n"
    )
    output = tmp_path / "suggestions.jsonl"
    assert (
        main(["generate", "--input", str(products), "--output", str(output), "--tenant", "shop-1"])
        == 0
    )
    suggestions = [Suggestion.model_validate_json(line) for line in output.read_text().splitlines()]
    assert [(s.product_id, s.channel) for s in suggestions] == [
        ("a", "default"),
        ("b", "amazon"),
        ("b", "ebay"),
    ]
    assert {s.tenant for s in suggestions} == {"shop-1"}
    err = capsys.readouterr().err
    assert f"{products}:3: decode: not JSON" in err
    assert "3 lines: 3 suggestions" in err


def test_unreachable_broker_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tiny_model_dir: Path
) -> None:
    from copyflow.embedded import free_port

    monkeypatch.setenv("COPYFLOW_KAFKA__BOOTSTRAP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("COPYFLOW_MODEL__NAME", str(tiny_model_dir))
    assert main(["worker"]) == 1
    assert "no Kafka broker answered at 127.0.0.1:" in capsys.readouterr().err


def test_train_and_adapters_commands_say_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_model_dir: Path,
) -> None:
    monkeypatch.setenv("COPYFLOW_MODEL__NAME", str(tiny_model_dir))
    monkeypatch.setenv("COPYFLOW_TRAINER__STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("COPYFLOW_TRAINER__REGISTRY_DIR", str(tmp_path / "registry"))
    assert main(["adapters", "list"]) == 0
    assert "no adapters released" in capsys.readouterr().out
    assert main(["adapters", "rollback", "--tenant", "shop-a"]) == 1
    assert "nothing to roll back" in capsys.readouterr().err
    examples = tmp_path / "edits.jsonl"
    example = {
        "example_id": "s-1",
        "tenant": "elsewhere",
        "channel": "default",
        "action": "accepted",
        "product": {"product_id": "p1", "title": "mug"},
        "title": "Mug",
        "description": "A mug.",
    }
    examples.write_text(json.dumps(example) + "\n" + "{broken\n")
    assert main(["train", "--tenant", "shop-a", "--examples", str(examples)]) == 2
    assert f"{examples}:2:" in capsys.readouterr().err
    examples.write_text(json.dumps(example) + "\n")
    assert main(["train", "--tenant", "shop-a", "--examples", str(examples)]) == 1
    err = capsys.readouterr().err
    assert "1 new examples stored" in err and "trainer.min_examples=50" in err


def test_layouts_learn_shows_what_it_learned_and_says_when_the_broker_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from copyflow.embedded import free_port
    from copyflow.trainer.examples import Example, ExampleStore

    monkeypatch.setenv("COPYFLOW_TRAINER__STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("COPYFLOW_TRAINER__REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("COPYFLOW_KAFKA__BOOTSTRAP", f"127.0.0.1:{free_port()}")
    assert main(["layouts", "learn", "--tenant", "shop-a", "--dry-run"]) == 0
    assert "no category has enough accepted titles" in capsys.readouterr().out
    colors = ("Navy", "Olive", "Maroon", "Black", "White", "Grey")
    rows = [
        {
            "example_id": f"s-{n}", "tenant": "shop-a", "channel": "default",
            "action": "edited", "description": "",
            "product": {"product_id": f"p{n}", "title": "linen shirt", "brand": "Harbor",
                        "category": ["Shirts"],
                        "attributes": {"gender": "Men", "color": colors[n]}},
            "title": f"Harbor Men {colors[n]} Linen Shirt",
        }
        for n in range(6)
    ]  # fmt: skip
    ExampleStore(tmp_path / "store").add(Example.model_validate(row) for row in rows)
    assert main(["layouts", "learn", "--tenant", "shop-a", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "brand gender color name type specs" in out
    assert "shop-a: 1 learned layouts" in out and "from 6 accepted titles" in out
    assert main(["layouts", "learn", "--tenant", "shop-a"]) == 1
    assert "not announced" in capsys.readouterr().err
    assert not (tmp_path / "registry" / "layouts").exists()  # tried again next time
