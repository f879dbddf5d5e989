"""`copyflow demo`: the whole flow on one machine, with nothing to set up.

Starts the bundled broker on a free port, runs `copyflow worker` against it with the configured
model, feeds the example catalog (broken events included), waits for every suggestion and dead
letter, prints them as a table, and shuts everything down.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from copyflow.consumer.intake import take_in
from copyflow.consumer.pipeline import Pipeline
from copyflow.embedded import TANSU_GROUP_ENV, EmbeddedBroker, stop_process
from copyflow.plugins.catalog import CatalogRecord
from copyflow.plugins.catalog.records import read_records
from copyflow.plugins.transport import dead_letters
from copyflow.plugins.transport.topics import ensure_topics
from copyflow.schemas import Settings, Suggestion
from copyflow.wiring import build_pipeline

EXAMPLE_CATALOG = Path(__file__).resolve().parent.parent / "examples" / "catalog.jsonl"


@dataclass(frozen=True)
class Expected:
    suggestions: int  # distinct suggestions (a redelivery or an unchanged update makes none)
    dead: int
    deleted: int


@dataclass
class DemoResult:
    suggestions: list[Suggestion]
    dead: list[tuple[int, dict[str, str]]]  # (source offset, headers)
    deleted: list[str]  # product ids of tombstones
    expected: Expected

    @property
    def complete(self) -> bool:
        got = Expected(len(self.suggestions), len(self.dead), len(self.deleted))
        return got == self.expected


def expected_outputs(records: list[CatalogRecord], pipeline: Pipeline) -> Expected:
    """What the catalog's records must produce, read as the worker reads them."""
    intake = asyncio.run(take_in(records, pipeline, cache=None, router=None))
    distinct = {(j.event.tenant, j.content_hash, j.channel) for j in intake.jobs}
    return Expected(len(distinct), len(intake.dead), len(intake.deleted))


def run_demo(
    settings: Settings,
    catalog: Path,
    timeout_s: float,
    out: Path | None,
    fmt: str = "copyflow",
) -> int:
    # The demo's input topic: copyflow's own, or one of the format's name read in it.
    topic = settings.topics.products if fmt == "copyflow" else f"{settings.topics.products}.{fmt}"
    records = [replace(r, topic=topic) for _, r in read_records(catalog, topic)]
    expected = expected_outputs(records, build_pipeline(settings, fmt))
    workdir = Path(tempfile.mkdtemp(prefix="copyflow-demo-"))
    print(f"copyflow demo: {len(records)} {fmt} records from {catalog}; logs in {workdir}")
    try:
        with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
            print(f"broker: tansu on {broker.bootstrap}")
            settings = settings.model_copy(deep=True)
            settings.kafka.bootstrap = broker.bootstrap
            ensure_topics(settings.kafka, settings.topics, [topic])
            env = {
                **os.environ,
                **TANSU_GROUP_ENV,
                "COPYFLOW_KAFKA__BOOTSTRAP": broker.bootstrap,
                "COPYFLOW_WORKER__DATA_DIR": str(workdir / "worker"),
                # A fresh broker is a fresh catalog: this run's skip state and cache are its
                # own (and short-lived), so a second demo is not skipped as unchanged.
                "COPYFLOW_CACHE__PREFIX": f"copyflow-demo-{workdir.name}",
                "COPYFLOW_CACHE__TTL_S": "3600",
                "COPYFLOW_CACHE__SEEN_TTL_S": "3600",
                "COPYFLOW_METRICS__PORT": os.environ.get("COPYFLOW_METRICS__PORT", "0"),
                # The demo shows every product's verdict, the unimproved ones too.
                "COPYFLOW_CHECKS__SKIP_UNIMPROVED": "false",
                "COPYFLOW_FORMATS__INPUTS": json.dumps({topic: fmt}),
            }
            with (workdir / "worker.log").open("wb") as worker_log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "copyflow", "worker"],
                    env=env,
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                )
            try:
                _produce(settings, records)
                print(
                    f"sent {len(records)} records; waiting for {expected.suggestions} "
                    f"suggestions, {expected.deleted} deletions and {expected.dead} dead letters "
                    f"(model {settings.model.name}) ..."
                )
                result = _collect(settings, expected, timeout_s, worker)
            finally:
                stop_process(worker, timeout_s=30)
    finally:
        if out is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(render_table(result))
    if out is not None:
        out.write_text("".join(s.model_dump_json() + "\n" for s in result.suggestions))
    if not result.complete:
        print(
            f"INCOMPLETE: got {len(result.suggestions)}/{expected.suggestions} suggestions, "
            f"{len(result.deleted)}/{expected.deleted} deletions and "
            f"{len(result.dead)}/{expected.dead} dead letters",
            file=sys.stderr,
        )
        return 1
    return 0


def _produce(settings: Settings, records: list[CatalogRecord]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.servers(), acks="all")
    try:
        for record in records:
            producer.send(
                record.topic,
                key=record.key or _product_key(record.value),
                value=record.value,
                headers=list(record.headers),
            )
        producer.flush()
    finally:
        producer.close()


def _product_key(value: bytes | None) -> bytes | None:
    try:
        return str(json.loads(value or b"")["data"]["product_id"]).encode()
    except (ValueError, KeyError, TypeError):
        return None


def _collect(
    settings: Settings,
    expected: Expected,
    timeout_s: float,
    worker: subprocess.Popen[bytes],
) -> DemoResult:
    topics = settings.topics
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.servers(),
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    consumer.assign(
        [
            TopicPartition(topic, p)
            for topic in (topics.suggestions, topics.products_dlq)
            for p in range(topics.partitions)
        ]
    )
    consumer.seek_to_beginning()
    by_id: dict[str, Suggestion] = {}
    dead: dict[tuple[int, int], dict[str, str]] = {}
    deleted: list[str] = []
    deadline = time.monotonic() + timeout_s

    def progress() -> str:
        return (
            f"{len(by_id)}/{expected.suggestions} suggestions, "
            f"{len(deleted)}/{expected.deleted} deletions, {len(dead)}/{expected.dead} dead letters"
        )

    def got() -> Expected:
        return Expected(len(by_id), len(dead), len(deleted))

    shown = ""
    try:
        while got() != expected:
            if time.monotonic() > deadline or worker.poll() is not None:
                break
            if progress() != shown:
                shown = progress()
                print(f"\r  {shown}", end="", flush=True)
            for record in consumer:
                if record.topic == topics.suggestions and record.value is None:
                    deleted.append(record.key.decode() if record.key else "")
                elif record.topic == topics.suggestions:
                    suggestion = Suggestion.model_validate_json(record.value)
                    by_id[str(suggestion.suggestion_id)] = suggestion
                else:
                    headers = {k: v.decode() for k, v in record.headers}
                    key = (
                        int(headers[dead_letters.SOURCE_PARTITION]),
                        int(headers[dead_letters.SOURCE_OFFSET]),
                    )
                    dead[key] = headers
        print(f"\r  {progress()}")
    finally:
        consumer.close()
    return DemoResult(
        suggestions=sorted(by_id.values(), key=lambda s: (s.product_id, s.channel)),
        dead=[(offset, headers) for (_, offset), headers in sorted(dead.items())],
        deleted=deleted,
        expected=expected,
    )


def render_table(result: DemoResult, width: int = 44) -> str:
    def cell(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[: width - 1] + "…"

    rows = [("product", "original title", "suggested title", "improved", "title from")]
    for s in result.suggestions:
        improved = "yes" if s.improved else "no"
        rows.append(
            (s.product_id, cell(s.input.title), cell(s.title), improved, s.title_source or "-")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(col.ljust(w) for col, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    unimproved = sum(not s.improved for s in result.suggestions)
    lines.append(
        f"improved {len(result.suggestions) - unimproved} of {len(result.suggestions)}; with "
        "checks.skip_unimproved (the default) the worker publishes nothing for the other "
        f"{unimproved}."
    )
    if result.deleted:
        lines.append("")
        lines.append(f"deleted (tombstones on the suggestions topic): {', '.join(result.deleted)}")
    lines.append("")
    lines.append(f"dead letters ({len(result.dead)}):")
    for _, headers in result.dead:
        where = (
            f"partition {headers[dead_letters.SOURCE_PARTITION]} "
            f"offset {headers[dead_letters.SOURCE_OFFSET]}"
        )
        reason = f"{headers[dead_letters.KIND]}: {headers[dead_letters.REASON]}"
        lines.append(f"  {where}  {cell(reason)}")
    return "\n".join(lines)
