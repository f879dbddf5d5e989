"""Feedback ingestion (join, park, refuse, deduplicate) and the training schedule."""

from __future__ import annotations

import json
from pathlib import Path

from aiokafka import ConsumerRecord

from copyflow.schemas import Feedback, Suggestion
from copyflow.schemas.settings import TopicSettings
from copyflow.trainer.examples import ExampleStore
from copyflow.trainer.feedback import FeedbackIngestor, SuggestionIndex
from copyflow.trainer.service import Schedule
from tests.training import trainer_settings
from tests.unit.test_trainer import decision, suggestion

TOPICS = TopicSettings()


def record(topic: str, value: bytes, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), ())


def of(item: Suggestion | Feedback) -> ConsumerRecord[bytes, bytes]:
    topic = TOPICS.suggestions if isinstance(item, Suggestion) else TOPICS.feedback
    return record(topic, json.dumps(item.model_dump(mode="json")).encode())


def ingestor(tmp_path: Path) -> tuple[FeedbackIngestor, ExampleStore]:
    store = ExampleStore(tmp_path / "store")
    index = SuggestionIndex(tmp_path / "store" / "suggestions.sqlite")
    return FeedbackIngestor(TOPICS, store, index), store


def test_a_decision_before_its_suggestion_waits_for_it_and_replays_change_nothing(
    tmp_path: Path,
) -> None:
    ingest, store = ingestor(tmp_path)
    s = suggestion("shop-a")
    early = decision(s, "edited", final_title="Acme Blue Mug")
    first = ingest.ingest([of(early)])
    assert (first.parked, sum(first.examples.values())) == (1, 0)
    second = ingest.ingest([of(s)])
    assert second.examples == {"shop-a": 1}
    [example] = store.load("shop-a")
    assert example.title == "Acme Blue Mug" and example.product == s.input
    # A batch replayed after a crash, before its offsets were committed:
    again = ingest.ingest([of(s), of(early)])
    assert sum(again.examples.values()) == 0 and ingest.index.parked() == 0
    # The index survives a restart.
    reopened, _ = ingestor(tmp_path)
    later = reopened.ingest([of(decision(s, "rejected"))])
    assert later.examples == {"shop-a": 1}


def test_unusable_feedback_becomes_dead_letters_with_reasons(tmp_path: Path) -> None:
    ingest, store = ingestor(tmp_path)
    s = suggestion("shop-a")
    other_tenant = Feedback(
        suggestion_id=s.suggestion_id, product_id="p1", tenant="shop-b", action="accepted"
    )
    other_product = Feedback(
        suggestion_id=s.suggestion_id, product_id="p9", tenant="shop-a", action="accepted"
    )
    bad = [
        record(TOPICS.feedback, b"{not json"),
        record(TOPICS.feedback, b'{"suggestion_id": "x"}'),
        of(other_tenant),
        of(other_product),
    ]
    result = ingest.ingest([of(s), *bad])
    kinds = [(letter.kind, letter.reason) for _, letter in result.dead]
    assert [kind for kind, _ in kinds] == ["decode", "schema", "join", "join"]
    assert "another tenant" in kinds[2][1] and "'p9'" in kinds[3][1]
    assert [r for r, _ in result.dead] == bad
    assert store.load("shop-a") == [] and store.load("shop-b") == []


def test_a_scope_is_due_after_enough_new_examples_or_after_the_interval(tmp_path: Path) -> None:
    now = [1000.0]
    settings = trainer_settings(tmp_path, min_examples=3, retrain_after=4, interval_s=60)
    store = ExampleStore(settings.store_dir)
    schedule = Schedule(settings, store, lambda: now[0])
    ingest, _ = ingestor(tmp_path)  # stores where the schedule looks

    def accept(count: int) -> None:
        for _ in range(count):
            s = suggestion("shop-a")
            ingest.ingest([of(s), of(decision(s, "accepted"))])

    accept(2)
    assert schedule.due() == []  # fewer than min_examples
    accept(2)
    assert schedule.due() == ["shop-a"]
    schedule.trained("shop-a", schedule.examples("shop-a"))
    assert schedule.due() == []
    accept(1)
    assert schedule.due() == []  # one new example, and not yet the interval
    now[0] += 61
    assert schedule.due() == ["shop-a"]
    schedule.trained("shop-a", schedule.examples("shop-a") - 1)  # one came during training
    assert schedule.due() == []
    later = Schedule(settings, store, lambda: now[0] + 61)  # kept across restarts
    assert later.due() == ["shop-a"]  # the example that came during training is still new
