"""Every built-in format against its example stream (the hand-written expectation) and the
bad-input corpus: a clear InvalidEvent, never a crash."""

from __future__ import annotations

import contextlib

import pytest

from copyflow.plugins.catalog import CatalogRecord, InvalidEvent, make_format
from tests.corpus import (
    EXAMPLES,
    cases,
    corpus,
    example_records,
    expected_outcome,
    outcome,
    wrong_types,
)

STREAMS = sorted(
    path.name.removesuffix(".records.jsonl") for path in EXAMPLES.glob("*.records.jsonl")
)


def format_of(stream: str) -> str:
    return stream.split("-")[0]


def test_every_built_in_format_has_an_example_stream() -> None:
    assert {format_of(s) for s in STREAMS} == {
        "cloudevents",
        "debezium",
        "shopify",
        "commercetools",
        "akeneo",
    }


@pytest.mark.parametrize("stream", STREAMS)
def test_the_bad_input_corpus_gives_invalid_events_only(stream: str) -> None:
    fmt = make_format(format_of(stream))
    for what, record in corpus(example_records(stream)):
        with pytest.raises(InvalidEvent) as info:
            fmt.decode(record)
        assert info.value.reason, what


@pytest.mark.parametrize("stream", STREAMS)
def test_wrong_types_anywhere_never_crash_a_format(stream: str) -> None:
    fmt = make_format(format_of(stream))
    tried = 0
    for example in example_records(stream):
        if not example.value or not example.value.startswith(b"{"):
            continue
        for what, record in wrong_types(example):
            tried += 1
            try:
                fmt.decode(record)
            except InvalidEvent:
                pass
            except Exception as exc:  # pragma: no cover - the failure message says where
                raise AssertionError(f"{stream}: {what}: {type(exc).__name__}: {exc}") from exc
    assert tried > 50


def test_a_record_without_a_value_is_read_by_each_format_without_a_crash() -> None:
    for name in {format_of(s) for s in STREAMS}:
        with contextlib.suppress(InvalidEvent):
            make_format(name).decode(CatalogRecord(None, key=b"\xff"))


@pytest.mark.parametrize("stream", STREAMS)
def test_each_example_stream_decodes_to_its_hand_written_expectation(stream: str) -> None:
    fmt = make_format(format_of(stream))
    for number, (record, line) in enumerate(cases(stream), start=1):
        assert outcome(fmt, record) == expected_outcome(line), f"{stream} record {number}"
