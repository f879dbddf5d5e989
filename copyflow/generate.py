"""`copyflow generate`: the worker's pipeline over a JSONL file, without Kafka."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from copyflow.consumer.pipeline import Job, Pipeline, filled, jobs_for, unavailable
from copyflow.plugins.catalog import PartialEvent, ProductDeleted
from copyflow.plugins.catalog.records import is_record_file, read_records
from copyflow.plugins.generators import Generator
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import Product, ProductEvent, Suggestion


@dataclass
class GenerateSummary:
    lines: int = 0
    suggestions: int = 0
    fallbacks: int = 0
    failed: list[DeadLetter] = field(default_factory=list)
    invalid: list[tuple[int, DeadLetter]] = field(default_factory=list)


def read_events(
    path: Path, pipeline: Pipeline, tenant: str
) -> Iterator[tuple[int, list[ProductEvent] | DeadLetter]]:
    """Each line's product events, read in the pipeline's format (a record file's lines are
    whole records). In copyflow's own format a line may also be a bare Product, which gets
    wrapped in an event. Fields a source left out come from the product's earlier lines."""
    bare_products = pipeline.formats.default.name == "copyflow" and not is_record_file(path)
    latest: dict[tuple[str, str, str], Product] = {}
    for number, record in read_records(path, topic=f"file:{path.name}"):
        if bare_products and record.value is not None:
            record = replace(record, value=_as_event(record.value, path, number, tenant))
        decoded = pipeline.decode(record)
        if isinstance(decoded, DeadLetter):
            yield number, decoded
            continue
        events: list[ProductEvent] = []
        for item in decoded:
            if isinstance(item, ProductDeleted):
                gone = (item.tenant, item.product_id)
                latest = {k: p for k, p in latest.items() if k[:2] != gone}
                continue
            if isinstance(item, PartialEvent):
                key = (item.event.tenant, item.event.data.product_id, item.event.data.locale)
                if key not in latest:
                    yield number, unavailable(item)
                    break
                item = filled(item, latest[key])
            latest[item.tenant, item.data.product_id, item.data.locale] = item.data
            events.append(item)
        else:
            yield number, events


def _as_event(line: bytes, path: Path, number: int, tenant: str) -> bytes:
    try:
        document = json.loads(line)
    except ValueError:
        return line  # decode reports it
    if isinstance(document, dict) and "data" not in document and "product_id" in document:
        document = {
            "id": f"{path.name}:{number}",
            "type": "product.created",
            "source": f"file://{path.name}",
            "time": datetime.now(UTC).isoformat(),
            "tenant": tenant,
            "data": document,
        }
        return json.dumps(document).encode()
    return line


def generate_file(
    pipeline: Pipeline,
    generator: Generator,
    path: Path,
    out: IO[str],
    tenant: str = "default",
    batch: int = 16,
) -> GenerateSummary:
    summary = GenerateSummary()
    pending: list[Job] = []

    def flush() -> None:
        for outcome in pipeline.run(generator, pending):
            if isinstance(outcome, Suggestion):
                out.write(outcome.model_dump_json() + "\n")
                summary.suggestions += 1
                summary.fallbacks += outcome.fallback_used
            else:
                summary.failed.append(outcome)
        out.flush()
        pending.clear()
        print(
            f"\r{summary.lines} lines, {summary.suggestions} suggestions, "
            f"{len(summary.invalid)} invalid",
            end="",
            file=sys.stderr,
            flush=True,
        )

    for number, decoded in read_events(path, pipeline, tenant):
        summary.lines += 1
        if isinstance(decoded, DeadLetter):
            summary.invalid.append((number, decoded))
            continue
        for event in decoded:
            pending.extend(jobs_for(event))
        if len(pending) >= batch:
            flush()
    flush()
    print(file=sys.stderr)
    return summary
