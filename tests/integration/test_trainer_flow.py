"""Feedback in, a release out, and the running worker's next suggestions made with it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from copyflow.consumer.adapters import parse_control
from copyflow.embedded import stop_process
from copyflow.schemas import AdapterReleased, Feedback, LayoutsReleased, Suggestion, TitleSlot
from tests.harness import OutputReader, WorkerProcess, encoded, produce, product_event

pytestmark = pytest.mark.integration

ACME = {"title": "Acme Mug", "description": "A mug."}


def mug(index: int, tenant: str, title: str | None = None) -> dict[str, object]:
    title = title or f"item {index} mug"
    return product_event(index, tenant, title=title, brand="Acme", category=[], attributes={})


@pytest.fixture
def trainer_env(worker_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Settings that let the tiny random model learn a fixed house style in seconds."""
    return {
        **worker_env,
        "COPYFLOW_TRAINER__STORE_DIR": str(tmp_path / "examples"),
        "COPYFLOW_TRAINER__REGISTRY_DIR": str(tmp_path / "adapters"),
        "COPYFLOW_TRAINER__GROUP_ID": f"{worker_env['COPYFLOW_KAFKA__GROUP_ID']}-trainer",
        "COPYFLOW_TRAINER__RANK": "8",
        "COPYFLOW_TRAINER__ALPHA": "16",
        "COPYFLOW_TRAINER__TARGET_MODULES": '["q_proj","v_proj","up_proj","down_proj","lm_head"]',
        "COPYFLOW_TRAINER__EPOCHS": "16",
        "COPYFLOW_TRAINER__LEARNING_RATE": "0.02",
        "COPYFLOW_TRAINER__BATCH_SIZE": "4",
        "COPYFLOW_TRAINER__MIN_EXAMPLES": "10",
        "COPYFLOW_TRAINER__RETRAIN_AFTER": "20",
        "COPYFLOW_TRAINER__DEVICE": "cpu",
    }


@pytest.fixture
def run_trainer(trainer_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], Path]]:
    started: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "trainer.log"

    def start() -> Path:
        with log.open("wb") as out:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "copyflow", "trainer"],
                    env=trainer_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        return log

    yield start
    for process in started:
        stop_process(process, timeout_s=120)


def edited(suggestion: Suggestion, title: str, description: str) -> bytes:
    """The merchant's decision: this suggestion, edited into title and description."""
    decision = Feedback(
        suggestion_id=suggestion.suggestion_id,
        product_id=suggestion.product_id,
        tenant=suggestion.tenant,
        action="edited",
        final_title=title,
        final_description=description,
    )
    return json.dumps(decision.model_dump(mode="json")).encode()


@pytest.fixture
def reader(topic_env: dict[str, str], kafka_bootstrap: str) -> Iterator[OutputReader]:
    """Reads the suggestions and dead letters the workers publish."""
    outputs = OutputReader(
        kafka_bootstrap,
        topic_env["COPYFLOW_TOPICS__SUGGESTIONS"],
        topic_env["COPYFLOW_TOPICS__PRODUCTS_DLQ"],
        4,
    )
    yield outputs
    outputs.close()


def read_all(
    bootstrap: str, topic: str, timeout_s: float, until: Callable[[list[bytes]], bool], log: Path
) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in range(4)])
    consumer.seek_to_beginning()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(values):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out on {topic}: {values}\n{log.read_text()[-3000:]}")
            for records in consumer.poll(timeout_ms=500).values():
                values += [record.value for record in records]
    finally:
        consumer.close()
    return values


def test_feedback_trains_a_release_that_the_running_worker_switches_to(
    start_worker: Callable[..., WorkerProcess],
    trainer_env: dict[str, str],
    topic_env: dict[str, str],
    kafka_bootstrap: str,
    run_trainer: Callable[[], Path],
    reader: OutputReader,
) -> None:
    worker = start_worker()
    products = topic_env["COPYFLOW_TOPICS__PRODUCTS"]
    produce(kafka_bootstrap, products, (encoded(mug(i, "shop-a")) for i in range(24)))
    before = reader.wait_for(lambda o: len(o.suggestions) >= 24, 180, worker).suggestions
    assert {s.model.adapter for s in before} == {None}

    # The merchant edits every suggestion into its house style; two decisions are unusable.
    decisions = [edited(s, ACME["title"], ACME["description"]) for s in before]
    intruder = json.loads(decisions[0]) | {"tenant": "shop-b"}
    decisions += [b"{not json", json.dumps(intruder).encode()]
    feedback = topic_env["COPYFLOW_TOPICS__FEEDBACK"]
    produce(kafka_bootstrap, feedback, ((None, value) for value in decisions))

    log = run_trainer()
    [release] = adapter_releases(
        read_all(
            kafka_bootstrap,
            topic_env["COPYFLOW_TOPICS__CONTROL"],
            600,
            lambda v: bool(adapter_releases(v)),
            log,
        )
    )
    assert (release.tenant, release.adapter_version) == ("shop-a", "v0001")
    dead = read_all(
        kafka_bootstrap,
        topic_env["COPYFLOW_TOPICS__FEEDBACK_DLQ"],
        30,
        lambda v: len(v) >= 2,
        log,
    )
    assert sorted(dead) == sorted(decisions[-2:])

    # The worker that never stopped makes shop-a's next copy with the new adapter.
    wait_for_log(worker, "shop-a now served by adapter v0001")
    # New products (never cached) whose text the tiny model saw in training: it learns the
    # style of what it saw, not yet how to generalize it.
    again = [mug(100, "shop-a", "item 3 mug"), mug(101, "shop-b", "item 3 mug")]
    produce(kafka_bootstrap, products, [encoded(event) for event in again])
    outputs = reader.wait_for(lambda o: {"p-100", "p-101"} <= o.product_ids(), 120, worker)
    made: dict[str, Suggestion] = {s.product_id: s for s in outputs.suggestions}
    assert made["p-100"].model.adapter == "tenant:shop-a"
    assert made["p-100"].model.adapter_version == "v0001"
    # The adapter answers in the house style ("Acme Mug"), and the judge refuses that answer
    # for an "item N mug": it drops the N. The published title keeps the product's facts.
    house = made["p-100"]
    faults = {c.name for c in house.checks if c.name.startswith("model title:")}
    assert "model title:numbers_kept" in faults, house.model_dump_json()
    number = next(w for w in house.input.title.split() if w.isdigit())
    assert house.title_source != "model" and number in house.title.split()
    assert made["p-101"].model.adapter is None  # another tenant never gets shop-a's adapter
    assert worker.process.poll() is None

    # A worker starting now learns what serves from the control topic before it reads.
    other = start_worker(COPYFLOW_KAFKA__GROUP_ID=f"{topic_env['COPYFLOW_KAFKA__GROUP_ID']}-2")
    wait_for_log(other, "adapters in use: {'shop-a': 'v0001'}")

    # A rollback goes back to the base model, in the running worker too.
    rollback = subprocess.run(
        [sys.executable, "-m", "copyflow", "adapters", "rollback", "--tenant", "shop-a"],
        env=trainer_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rollback.returncode == 0, rollback.stderr
    assert "shop-a: serving the base model" in rollback.stdout
    wait_for_log(worker, "shop-a now served by the base model")
    produce(kafka_bootstrap, products, [encoded(mug(102, "shop-a", "item 3 mug"))])
    outputs = reader.wait_for(lambda o: "p-102" in o.product_ids(), 120, worker)
    [after] = [s for s in outputs.suggestions if s.product_id == "p-102"]
    assert after.model.adapter is None


def adapter_releases(values: list[bytes]) -> list[AdapterReleased]:
    """The adapter releases among control events (learned layouts are announced there too)."""
    events = [parse_control(value) for value in values]
    return [event for event in events if isinstance(event, AdapterReleased)]


def wait_for_log(worker: WorkerProcess, line: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in worker.log.read_text(errors="replace"):
        assert worker.process.poll() is None, worker.log_tail()
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.5)


SHOP: list[TitleSlot] = ["brand", "gender", "color", "name", "type", "specs"]
COLORS = ("Navy Blue", "Olive", "Maroon", "Black", "White", "Grey")
NAMES = ("Slim Fit", "Regular Fit", "Checked", "Striped", "Printed", "Solid")


def shirt(index: int, tenant: str) -> dict[str, object]:
    name, color = NAMES[index % len(NAMES)], COLORS[index % len(COLORS)]
    return product_event(
        index,
        tenant,
        title=f"{name.lower()} shirt",
        brand="Harbor",
        category=["Apparel", "Shirts"],
        attributes={"gender": "Men", "color": color},
    )


def test_accepted_titles_teach_a_layout_that_the_running_worker_composes_in(
    start_worker: Callable[..., WorkerProcess],
    trainer_env: dict[str, str],
    topic_env: dict[str, str],
    kafka_bootstrap: str,
    run_trainer: Callable[[], Path],
    reader: OutputReader,
) -> None:
    worker = start_worker()
    products = topic_env["COPYFLOW_TOPICS__PRODUCTS"]
    produce(kafka_bootstrap, products, (encoded(shirt(i, "shop-a")) for i in range(12)))
    before = reader.wait_for(lambda o: len(o.suggestions) >= 12, 180, worker).suggestions
    assert {s.model.layouts_version for s in before} == {None}

    # The shop's merchants put gender and color before the name: "Harbor Men Olive Slim Fit
    # Shirt", where copyflow's default layout says "Harbor Slim Fit Men's Olive Shirt".
    def house(s: Suggestion) -> str:
        name = s.input.title.removesuffix(" shirt").title()
        return f"Harbor Men {s.input.attributes['color']} {name} Shirt"

    decisions = [(None, edited(s, house(s), s.description)) for s in before]
    produce(kafka_bootstrap, topic_env["COPYFLOW_TOPICS__FEEDBACK"], decisions)
    trainer_env["COPYFLOW_TRAINER__MIN_EXAMPLES"] = "1000"  # layouts only: no LoRA training
    log = run_trainer()
    control = read_all(
        kafka_bootstrap,
        topic_env["COPYFLOW_TOPICS__CONTROL"],
        120,
        lambda v: any(isinstance(parse_control(e), LayoutsReleased) for e in v),
        log,
    )
    # Learned as the examples arrive: announced once trainer.layout_min_titles of them agree,
    # and not again while later ones change nothing.
    [layouts] = [e for e in map(parse_control, control) if isinstance(e, LayoutsReleased)]
    assert (layouts.tenant, layouts.layouts) == ("shop-a", {"*": SHOP})
    assert 5 <= layouts.titles <= 12

    wait_for_log(worker, f"shop-a: title layouts {layouts.version}")
    again = [shirt(100, "shop-a"), shirt(101, "shop-b")]
    produce(kafka_bootstrap, products, [encoded(event) for event in again])
    outputs = reader.wait_for(lambda o: {"p-100", "p-101"} <= o.product_ids(), 120, worker)
    made = {s.product_id: s for s in outputs.suggestions}
    assert made["p-100"].title == "Harbor Men's White Printed Shirt", made["p-100"].reason
    assert made["p-100"].model.layouts_version == layouts.version
    assert "learned layout" in (made["p-100"].reason or "")
    # Another tenant keeps the default layout.
    assert made["p-101"].title == "Harbor Solid Men's Grey Shirt", made["p-101"].reason
    assert made["p-101"].model.layouts_version is None
