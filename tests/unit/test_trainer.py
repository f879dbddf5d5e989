"""The trainer: example store, registry, gate, and LoRA training on a tiny real model."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from copyflow.plugins.review import CopyReviewer
from copyflow.schemas import Feedback, ModelInfo, Product, Suggestion
from copyflow.trainer.examples import Example, ExampleStore, from_decision
from copyflow.trainer.gate import decide
from copyflow.trainer.registry import Registry, RegistryError, Release
from copyflow.trainer.run import NotEnoughExamples, split, train_once
from tests.training import house_example, tiny_spec, trainer_settings


def suggestion(tenant: str = "shop-a", title: str = "Blue Mug") -> Suggestion:
    product = Product(product_id="p1", title="blue mug 300ml", brand="Acme")
    return Suggestion(
        suggestion_id=uuid.uuid4(),
        product_id="p1",
        tenant=tenant,
        source_event_id="e1",
        channel="default",
        title=title,
        description="A blue mug.",
        model=ModelInfo(base="m", revision="r", prompt_version="v1"),
        checks=[],
        fallback_used=False,
        latency_ms=1.0,
        content_hash="h",
        input=product,
    )


def decision(s: Suggestion, action: str, **text: str) -> Feedback:
    return Feedback(
        suggestion_id=s.suggestion_id, product_id="p1", tenant=s.tenant, action=action, **text
    )


def test_decisions_become_examples() -> None:
    s = suggestion()
    accepted = from_decision(s, decision(s, "accepted"))
    edited = from_decision(s, decision(s, "edited", final_title="Acme Blue Mug 300 ml"))
    rejected = from_decision(s, decision(s, "rejected"))
    assert (accepted.title, accepted.trainable) == ("Blue Mug", True)
    assert (edited.title, edited.description) == ("Acme Blue Mug 300 ml", "A blue mug.")
    assert not rejected.trainable
    assert accepted.product == s.input


def test_the_store_keeps_the_last_decision_per_suggestion_and_tenants_apart(
    tmp_path: Path,
) -> None:
    store = ExampleStore(tmp_path)
    a, b = suggestion("shop-a"), suggestion("shop/b")
    assert store.add([from_decision(a, decision(a, "accepted"))]) == 1
    assert store.add([from_decision(a, decision(a, "accepted"))]) == 0  # a duplicate
    assert store.add([from_decision(a, decision(a, "rejected"))]) == 1  # changed its mind
    store.add([from_decision(b, decision(b, "accepted"))])
    [only] = store.load("shop-a")
    assert only.action == "rejected"
    assert [e.tenant for e in store.load("shop/b")] == ["shop/b"]
    assert store.tenants() == ["shop-a", "shop/b"]


def release(version: str, tenant: str | None = None) -> Release:
    return Release(
        version=version,
        tenant=tenant,
        base_model="m",
        base_revision="r",
        prompt_version="v1",
        data_fingerprint="f",
        examples=3,
    )


def fake_adapter(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    (folder / "adapter_config.json").write_text("{}")
    return folder


def test_registry_promotes_rolls_back_and_refuses_bad_input(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry")
    adapter = fake_adapter(tmp_path / "adapter")
    assert registry.next_version("shop-a") == "v0001"
    registry.add(adapter, release("v0001", "shop-a"))
    registry.add(adapter, release("v0002", "shop-a"))
    with pytest.raises(RegistryError, match="exists"):
        registry.add(adapter, release("v0002", "shop-a"))
    with pytest.raises(RegistryError, match="lacks"):
        registry.add(tmp_path, release("v0003", "shop-a"))
    assert registry.current("shop-a") is None
    registry.promote("shop-a", "v0001")
    registry.promote("shop-a", "v0002")
    current = registry.current("shop-a")
    assert current is not None and current.version == "v0002"
    assert registry.current(None) is None  # the global scope is apart
    rolled = registry.rollback("shop-a")
    assert rolled is not None and rolled.version == "v0001"
    assert registry.rollback("shop-a") is None  # back to the base model
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback("shop-a")
    with pytest.raises(RegistryError, match="known: v0001, v0002"):
        registry.promote("shop-a", "v0009")
    stored = sorted(p.name for p in (registry.location(release("v0001", "shop-a"))).iterdir())
    assert stored == ["adapter_config.json", "adapter_model.safetensors", "release.json"]
    assert "v0002" in registry.describe()


def test_the_gate_needs_the_margin_and_no_drop_in_checks() -> None:
    base = {"rouge_l_title": 0.40, "checks_passed": 0.9}
    assert decide({"rouge_l_title": 0.45, "checks_passed": 0.9}, base, 0.02).release
    assert not decide({"rouge_l_title": 0.41, "checks_passed": 0.9}, base, 0.02).release
    assert not decide({"rouge_l_title": 0.60, "checks_passed": 0.5}, base, 0.02).release


def test_the_split_is_stable_as_examples_arrive() -> None:
    examples = [house_example(i) for i in range(200)]
    train, holdout = split(examples, 0.2)
    _, holdout_later = split([*examples, *(house_example(i) for i in range(200, 300))], 0.2)
    assert 20 < len(holdout) < 60 and len(train) + len(holdout) == 200
    assert {e.example_id for e in holdout} <= {e.example_id for e in holdout_later}


def test_a_small_set_always_has_examples_on_both_sides() -> None:
    examples = [house_example(i) for i in range(300)]
    train, holdout = split(examples, 0.2)
    # Sets made only of the examples the hash puts on one side still split.
    for side in (train[:24], holdout[:24]):
        small_train, small_holdout = split(side, 0.2)
        assert small_train and small_holdout and len(small_train) + len(small_holdout) == 24
    assert split(examples[:1], 0.2) in (([examples[0]], []), ([], [examples[0]]))


@pytest.mark.parametrize(
    ("learning_rate", "epochs", "released"), [(2e-2, 16, True), (1e-7, 1, False)]
)
def test_training_releases_only_an_adapter_the_gate_finds_better(
    tiny_model_dir: Path, tmp_path: Path, learning_rate: float, epochs: int, released: bool
) -> None:
    settings = trainer_settings(tmp_path, learning_rate=learning_rate, epochs=epochs)
    ExampleStore(settings.store_dir).add(house_example(i) for i in range(24))
    trained = train_once(
        tiny_spec(tiny_model_dir), settings, "shop-a", CopyReviewer(), show_progress=False
    )
    metrics = json.loads((trained.report_dir / "metrics.json").read_text())
    assert (trained.report_dir / "loss.png").stat().st_size > 0
    assert "Gate" in (trained.report_dir / "report.md").read_text()
    assert trained.verdict.release is released and metrics["released"] is released
    assert set(metrics["candidate"]) == set(metrics["current"]) >= {"failed_grounded"}
    registry = Registry(settings.registry_dir)
    if released:
        assert metrics["candidate"]["rouge_l_title"] > metrics["current"]["rouge_l_title"] + 0.02
        assert metrics["holdout_losses"][-1] < metrics["holdout_losses"][0] / 4
        current = registry.current("shop-a")
        assert current is not None and current.version == "v0001"
        # Trained with the adapter prompt, and served with it: the release names it.
        assert current.prompt_version == settings.prompt_version == "s1"
        announced = registry.announcement("shop-a")
        assert announced is not None and announced.prompt_version == "s1"
        files = {p.name for p in registry.location(current).iterdir()}
        assert {"adapter_model.safetensors", "adapter_config.json", "report.md"} <= files
        assert not any(name.endswith((".bin", ".pt")) for name in files)
        assert registry.current(None) is None  # a tenant's adapter serves only that tenant
    else:
        assert registry.releases("shop-a") == []


def test_too_few_examples_is_a_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = trainer_settings(tmp_path, min_examples=50)
    ExampleStore(settings.store_dir).add(house_example(i) for i in range(5))
    with pytest.raises(NotEnoughExamples, match=r"trainer\.min_examples=50"):
        train_once(tiny_spec(tiny_model_dir), settings, "shop-a", CopyReviewer(), False)


def test_the_shared_prefix_answer_only_loss_is_the_full_loss_with_its_gradients(
    tiny_model_dir: Path,
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from copyflow.trainer.lora import _batches, _Encoder, answer_loss, shared_prefix

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(
        r=4, target_modules=["q_proj", "v_proj", "lm_head"], init_lora_weights=False
    )
    model = get_peft_model(base, config)
    encode = _Encoder(tokenizer, "v3")
    # Rows of different lengths: padding, and labels only on each row's answer.
    [batch] = _batches([encode(house_example(i)) for i in (1, 22, 333)], 3, 0, torch.device("cpu"))
    assert (batch["attention_mask"] == 0).any()
    prefix = shared_prefix(batch["input_ids"], batch["labels"])
    assert 0.5 * batch["input_ids"].shape[1] < prefix  # the instructions and examples
    assert (batch["labels"][:, : prefix + 1] == -100).all()
    single = {name: value[:1] for name, value in batch.items()}
    assert shared_prefix(single["input_ids"], single["labels"]) == 0

    def gradients(loss: torch.Tensor) -> list[torch.Tensor]:
        model.zero_grad()
        loss.backward()
        return [
            p.grad.clone() for p in model.parameters() if p.requires_grad and p.grad is not None
        ]

    full = model(**batch).loss
    ours = answer_loss(model, batch)
    assert torch.allclose(ours, full, rtol=1e-5, atol=1e-6)
    expected, got = gradients(full), gradients(answer_loss(model, batch))
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert torch.allclose(answer_loss(model, single), model(**single).loss, rtol=1e-5)


@pytest.mark.parametrize("prompt", ["s1", "v3"])  # a short shared prefix, and a long one
def test_a_batch_backpropagated_in_slices_has_the_whole_batchs_loss_and_gradients(
    tiny_model_dir: Path, prompt: str
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from copyflow.trainer.lora import _batches, _Encoder, answer_loss, backward_in_slices

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.eval()  # no dropout: both passes must see the same network
    encode = _Encoder(tokenizer, prompt)
    examples = [encode(house_example(i)) for i in (1, 22, 333, 4444, 55555)]
    [batch] = _batches(examples, 5, 0, torch.device("cpu"))
    assert (batch["attention_mask"] == 0).any()  # rows of different lengths

    def gradients() -> list[torch.Tensor]:
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.zero_grad()
        return grads

    whole = answer_loss(model, batch)
    whole.backward()
    expected = gradients()
    width = batch["input_ids"].shape[1]
    for step_tokens in (1, 2 * width, 10**6):  # a row per slice, two rows, the whole batch
        loss = backward_in_slices(model, batch, step_tokens)
        got = gradients()
        assert abs(loss - float(whole.detach())) < 1e-5
        assert len(got) == len(expected) > 0
        for a, b in zip(got, expected, strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_the_gate_counts_the_faults_of_the_copy_workers_would_serve() -> None:
    """An adapter's title with a word no field gives is served repaired (the word taken out):
    the fault is mended, not counted. One with nothing left to repair is counted."""
    from copyflow.plugins.generators import GenerationResult
    from copyflow.trainer.gate import scored

    product = Product(
        product_id="p-1", title="navy oxford shirt acme", brand="Acme", attributes={"color": "Navy"}
    )
    example = Example(
        example_id="e-1",
        tenant="shop-a",
        channel="default",
        product=product,
        title="Acme Navy Oxford Shirt",
        description="A navy oxford shirt from Acme.",
        action="accepted",
    )

    def faults(title: str, learned: bool) -> set[str]:
        answer = GenerationResult("", title, "A navy oxford shirt from Acme.", None, 10, 10)
        return scored(CopyReviewer(), example, answer, learned)[2]

    assert faults("Acme Navy Oxford Shirt", learned=True) == set()
    assert faults("Acme Navy Zebra Oxford Shirt", learned=True) == set()  # served repaired
    assert "title:new_words" in faults("Zebra Bowl", learned=True)  # nothing left to repair
    # The base model's answer is reviewed as the base model's: here too its repair is served.
    assert faults("Acme Navy Zebra Oxford Shirt", learned=False) == set()
