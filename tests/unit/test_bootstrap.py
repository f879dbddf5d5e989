"""Bootstrap examples from a catalog alone: degraded inputs, the real copy as targets, broken
copy left out with its reason, and `copyflow train --bootstrap` from the backfill's formats."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from copyflow.cli import main
from copyflow.schemas import Product
from copyflow.trainer.bootstrap import bootstrap_examples, degrade
from copyflow.trainer.examples import ExampleStore

LAMP = Product(
    product_id="l-1",
    title="Lumenix White LED Desk Lamp with USB-C Port and Touch Dimmer",
    brand="Lumenix",
    category=["Home", "Lighting", "Desk Lamps"],
    attributes={"color": "White", "power": "10 W"},
    description="A dimmable desk lamp. It charges a phone through its USB-C port.",
)


def test_a_degraded_product_loses_its_brand_attributes_order_and_description() -> None:
    raw = degrade(LAMP, random.Random(1))
    kept = raw.title.split()
    assert raw.title == raw.title.lower() and raw.description == ""
    assert "lumenix" not in kept and "white" not in kept
    assert "lamp" in kept  # the product type's head noun is never dropped
    assert len(kept) < len(LAMP.title.split()) - 2  # brand, color, and some words dropped
    assert raw.title != " ".join(w.lower() for w in LAMP.title.split() if w in kept)  # shuffled
    assert (raw.brand, raw.attributes, raw.category) == (LAMP.brand, LAMP.attributes, LAMP.category)
    assert degrade(LAMP, random.Random(1)) == raw


def test_real_copy_becomes_the_target_and_broken_copy_is_left_out_with_its_reason() -> None:
    unfinished = LAMP.model_copy(
        update={
            "product_id": "l-2",
            "title": "Lumenix Black Desk Lamp",
            "description": "A lamp with",
        }
    )
    broken = LAMP.model_copy(update={"product_id": "l-3", "title": "Lumenix Desk Lamp \ufffd"})
    short = LAMP.model_copy(update={"product_id": "l-4", "title": "Lamp"})
    made = bootstrap_examples([LAMP, LAMP, unfinished, broken, short], "shop-a")
    assert [e.title for e in made.examples] == [LAMP.title, "Lumenix Black Desk Lamp"]
    own, templated = made.examples
    assert own.description == LAMP.description and made.own_descriptions == 1
    # An unfinished description is no target: the template writes one from the fields.
    assert templated.description.startswith("Lumenix Black Desk Lamp.")
    assert "A lamp in" not in templated.description
    assert made.excluded == {"duplicate": 1, "title well formed": 1, "title too short": 1}
    assert {e.action for e in made.examples} == {"accepted"}
    assert own.product.description == "" and own.product.title != LAMP.title
    again = bootstrap_examples([LAMP], "shop-a")
    assert again.examples == made.examples[:1]  # the same catalog makes the same examples
    assert "2 products used (1 with their own description), 3 left out" in made.summary()


def test_train_bootstrap_reads_a_catalog_and_says_what_it_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("STORE_DIR", "REGISTRY_DIR"):
        monkeypatch.setenv(f"COPYFLOW_TRAINER__{name}", str(tmp_path / name.lower()))
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "product_id,title,brand,attr.color\n"
        "p1,Harbor Men Navy Slim Fit Shirt,Harbor,Navy\n"
        "p2,Harbor Men Olive Linen Shirt,Harbor,Olive\n"
        ",no id,Harbor,Black\n"
    )
    assert main(["train", "--bootstrap", str(catalog), "--tenant", "shop-a"]) == 1
    err = capsys.readouterr().err
    assert "bootstrap: 2 products used (0 with their own description), 1 left out" in err
    assert "1 unreadable line" in err and f"{catalog}:4:" in err
    assert "trainer.min_examples=50" in err  # too few to train on, and stored for later
    stored = ExampleStore(tmp_path / "store_dir").load("shop-a")
    assert sorted(e.title for e in stored) == [
        "Harbor Men Navy Slim Fit Shirt",
        "Harbor Men Olive Linen Shirt",
    ]
    assert main(["train", "--bootstrap", str(tmp_path / "none.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "catalog.txt").write_text(json.dumps({"product_id": "x"}))
    assert main(["train", "--bootstrap", str(tmp_path / "catalog.txt")]) == 2
    assert "a catalog is .jsonl or .csv" in capsys.readouterr().err


def test_the_trainer_bootstraps_a_tenant_once_it_has_seen_enough_products(tmp_path: Path) -> None:
    import uuid

    from copyflow.plugins.review import CopyReviewer
    from copyflow.schemas import ModelInfo, Settings, Suggestion
    from copyflow.trainer.service import Trainer

    settings = Settings.model_validate(
        {
            "trainer": {
                "store_dir": str(tmp_path / "store"),
                "registry_dir": str(tmp_path / "registry"),
                "bootstrap_after": 3,
            }
        }
    )
    trainer = Trainer(settings, None, CopyReviewer())  # type: ignore[arg-type]

    def seen(tenant: str, index: int) -> Suggestion:
        product = LAMP.model_copy(
            update={"product_id": f"l-{index}", "title": f"Lumenix Desk Lamp L{index}"}
        )
        return Suggestion(
            suggestion_id=uuid.uuid4(), product_id=product.product_id, tenant=tenant,
            source_event_id="e", channel="default", title=product.title, description="",
            model=ModelInfo(base="m", revision="r", prompt_version="v3"), checks=[],
            fallback_used=True, latency_ms=1.0, content_hash="h", input=product,
        )  # fmt: skip

    # Two suggestions on one product count it once.
    trainer.index.add([seen("shop-a", 1), seen("shop-a", 1), seen("shop-a", 2), seen("b", 1)])
    trainer._bootstrap_due()
    assert trainer.store.load("shop-a") == []
    trainer.index.add([seen("shop-a", 3)])
    trainer._bootstrap_due()
    made = trainer.store.load("shop-a")
    assert sorted(e.title for e in made) == [f"Lumenix Desk Lamp L{i}" for i in (1, 2, 3)]
    assert trainer.store.load("b") == [] and "shop-a" in trainer._layouts_due
    trainer.index.add([seen("shop-a", 4)])
    trainer._bootstrap_due()  # once per tenant
    assert len(trainer.store.load("shop-a")) == 3
    trainer.index.close()
