"""`copyflow generate`: the worker's pipeline over a JSONL file, without Kafka."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from copyflow.consumer.pipeline import Job, Pipeline, jobs_for
from copyflow.plugins.generators import Generator
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.schemas import ProductEvent, Suggestion


@dataclass
class GenerateSummary:
    lines: int = 0
    suggestions: int = 0
    fallbacks: int = 0
    failed: list[DeadLetter] = field(default_factory=list)
    invalid: list[tuple[int, DeadLetter]] = field(default_factory=list)


def read_events(
    path: Path, pipeline: Pipeline, tenant: str
) -> Iterator[tuple[int, ProductEvent | DeadLetter]]:
    """Each line is a ProductEvent, or a bare Product that gets wrapped in one."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            yield number, pipeline.decode(_as_event(line, path, number, tenant))


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
        pending.extend(jobs_for(decoded))
        if len(pending) >= batch:
            flush()
    flush()
    print(file=sys.stderr)
    return summary
