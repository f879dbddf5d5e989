"""`copyflow demo`: the whole flow on one machine, with nothing to set up.

Starts the bundled broker on a free port, runs `copyflow worker` against it with the configured
model, feeds the example catalog (broken events included), waits for every suggestion and dead
letter, prints them as a table, and shuts everything down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from copyflow.consumer.pipeline import jobs_for
from copyflow.embedded import TANSU_GROUP_ENV, EmbeddedBroker, stop_process
from copyflow.plugins.catalog import JsonCatalogAdapter
from copyflow.plugins.catalog.base import InvalidEvent
from copyflow.plugins.transport import dead_letters
from copyflow.plugins.transport.topics import ensure_topics
from copyflow.schemas import Settings, Suggestion

EXAMPLE_CATALOG = Path(__file__).resolve().parent.parent / "examples" / "catalog.jsonl"


@dataclass
class DemoResult:
    suggestions: list[Suggestion]
    dead: list[tuple[int, dict[str, str]]]  # (source offset, headers)
    expected_suggestions: int
    expected_dead: int

    @property
    def complete(self) -> bool:
        return (len(self.suggestions), len(self.dead)) == (
            self.expected_suggestions,
            self.expected_dead,
        )


def expected_outputs(lines: list[bytes]) -> tuple[int, int]:
    """How many suggestions and dead letters the catalog's lines must produce."""
    adapter = JsonCatalogAdapter()
    suggestions = dead = 0
    for line in lines:
        try:
            suggestions += len(jobs_for(adapter.decode(line)))
        except InvalidEvent:
            dead += 1
    return suggestions, dead


def run_demo(settings: Settings, catalog: Path, timeout_s: float, out: Path | None) -> int:
    lines = [line.rstrip(b"\n") for line in catalog.read_bytes().splitlines() if line.strip()]
    expected_suggestions, expected_dead = expected_outputs(lines)
    workdir = Path(tempfile.mkdtemp(prefix="copyflow-demo-"))
    print(f"copyflow demo: {len(lines)} events from {catalog}; logs in {workdir}")
    try:
        with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
            print(f"broker: tansu on {broker.bootstrap}")
            settings = settings.model_copy(deep=True)
            settings.kafka.bootstrap = broker.bootstrap
            ensure_topics(settings.kafka, settings.topics)
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
            }
            with (workdir / "worker.log").open("wb") as worker_log:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "copyflow", "worker"],
                    env=env,
                    stdout=worker_log,
                    stderr=subprocess.STDOUT,
                )
            try:
                _produce(settings, lines)
                print(
                    f"sent {len(lines)} events; waiting for {expected_suggestions} suggestions "
                    f"and {expected_dead} dead letters (model {settings.model.name}) ..."
                )
                result = _collect(settings, expected_suggestions, expected_dead, timeout_s, worker)
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
            f"INCOMPLETE: got {len(result.suggestions)}/{expected_suggestions} suggestions and "
            f"{len(result.dead)}/{expected_dead} dead letters",
            file=sys.stderr,
        )
        return 1
    return 0


def _produce(settings: Settings, lines: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.servers(), acks="all")
    try:
        for line in lines:
            producer.send(settings.topics.products, key=_product_key(line), value=line)
        producer.flush()
    finally:
        producer.close()


def _product_key(line: bytes) -> bytes | None:
    try:
        return str(json.loads(line)["data"]["product_id"]).encode()
    except (ValueError, KeyError, TypeError):
        return None


def _collect(
    settings: Settings,
    want_suggestions: int,
    want_dead: int,
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
    deadline = time.monotonic() + timeout_s
    shown = (-1, -1)
    try:
        while (len(by_id), len(dead)) != (want_suggestions, want_dead):
            if time.monotonic() > deadline or worker.poll() is not None:
                break
            if (len(by_id), len(dead)) != shown:
                shown = (len(by_id), len(dead))
                print(
                    f"\r  {shown[0]}/{want_suggestions} suggestions, "
                    f"{shown[1]}/{want_dead} dead letters",
                    end="",
                    flush=True,
                )
            for record in consumer:
                if record.topic == topics.suggestions:
                    suggestion = Suggestion.model_validate_json(record.value)
                    by_id[str(suggestion.suggestion_id)] = suggestion
                else:
                    headers = {k: v.decode() for k, v in record.headers}
                    key = (
                        int(headers[dead_letters.SOURCE_PARTITION]),
                        int(headers[dead_letters.SOURCE_OFFSET]),
                    )
                    dead[key] = headers
        print(
            f"\r  {len(by_id)}/{want_suggestions} suggestions, {len(dead)}/{want_dead} dead letters"
        )
    finally:
        consumer.close()
    return DemoResult(
        suggestions=sorted(by_id.values(), key=lambda s: (s.product_id, s.channel)),
        dead=[(offset, headers) for (_, offset), headers in sorted(dead.items())],
        expected_suggestions=want_suggestions,
        expected_dead=want_dead,
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
