"""Shared by the trainer's tests: a learnable house style, small settings, the tiny model."""

from __future__ import annotations

from pathlib import Path

from copyflow.plugins.generators.spec import TransformersSpec
from copyflow.schemas import Product
from copyflow.schemas.settings import TrainerSettings
from copyflow.trainer.examples import Example


def house_example(
    index: int, tenant: str = "shop-a", title: str = "Acme Mug", description: str = "A mug."
) -> Example:
    """A merchant whose accepted copy is always the same two lines: learnable by a tiny model."""
    return Example(
        example_id=f"s-{index}",
        tenant=tenant,
        channel="default",
        product=Product(product_id=f"p{index}", title=f"item {index} mug", brand="Acme"),
        title=title,
        description=description,
        action="accepted",
    )


def trainer_settings(tmp_path: Path, **overrides: object) -> TrainerSettings:
    values: dict[str, object] = {
        "store_dir": tmp_path / "store",
        "registry_dir": tmp_path / "registry",
        "rank": 8,
        "alpha": 16,
        # A random 64-wide model learns a fixed answer only with its output layer adapted too.
        "target_modules": ["q_proj", "v_proj", "up_proj", "down_proj", "lm_head"],
        "epochs": 10,
        "learning_rate": 2e-2,
        "batch_size": 4,
        "min_examples": 10,
        "device": "cpu",
    }
    return TrainerSettings.model_validate({**values, **overrides})


def tiny_spec(tiny_model_dir: Path) -> TransformersSpec:
    # float32 on every CPU: batched outputs equal unbatched ones exactly only there (in
    # bfloat16, which dtype auto takes on AMX CPUs, a batch's shape changes the rounding).
    return TransformersSpec(
        location=str(tiny_model_dir),
        prompt_version="v1",
        dtype="float32",
        max_new_tokens=16,
        batch_size=16,
    )
