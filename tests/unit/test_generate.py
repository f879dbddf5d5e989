"""`copyflow generate --format`: a file of another catalog's records, read as the worker reads
its topic (fields left out filled from the product's earlier lines, deletions forget them)."""

from __future__ import annotations

from pathlib import Path

from copyflow.consumer.pipeline import InputFormats, Pipeline
from copyflow.generate import read_events
from copyflow.plugins.catalog import make_format
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import ProductEvent
from tests.corpus import EXAMPLES, expected_stream


def test_a_debezium_file_gives_its_expected_events_with_left_out_fields_filled() -> None:
    stream = expected_stream("debezium")
    pipeline = Pipeline(InputFormats.only(make_format("debezium")), 1 << 20)
    events: list[ProductEvent] = []
    dead: list[str] = []
    for _, decoded in read_events(EXAMPLES / "debezium.records.jsonl", pipeline, "default"):
        if isinstance(decoded, DeadLetter):
            dead.append(decoded.kind)
        else:
            events += decoded
    dump = [e.model_dump(mode="json") for e in events]
    assert dump == [e.model_dump(mode="json") for e in stream.events]
    assert sorted(dead) == sorted(stream.dead.elements())


def test_a_left_out_field_without_an_earlier_line_is_a_dead_letter(tmp_path: Path) -> None:
    lines = (EXAMPLES / "debezium.records.jsonl").read_text().splitlines()
    stream = expected_stream("debezium")
    partial = next(
        i
        for i, record in enumerate(stream.records)
        if b"__debezium_unavailable_value" in (record.value or b"")
    )
    alone = tmp_path / "alone.records.jsonl"
    alone.write_text(lines[partial] + "\n")
    pipeline = Pipeline(InputFormats.only(make_format("debezium")), 1 << 20)
    ((number, decoded),) = list(read_events(alone, pipeline, "default"))
    assert number == 1
    assert isinstance(decoded, DeadLetter) and decoded.kind == "unavailable"
    assert "no earlier content" in decoded.reason
