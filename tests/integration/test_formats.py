"""Catalog formats through the real broker: one worker reads every format's example stream
(each on its own topic, a format packaged outside the repository among them) and must publish
the same suggestions as a second worker reading the equivalent ProductEvents; deletions give
tombstones, malformed records and the bad-input corpus dead letters, and nothing is lost."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from copyflow.plugins.catalog import CatalogRecord
from copyflow.plugins.transport import dead_letters, headers
from copyflow.schemas import ProductEvent
from tests.corpus import EXAMPLES, Stream, corpus, expected_stream
from tests.harness import OutputReader, Outputs, WorkerProcess

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent.parent
WRITES_BACK = {"cloudevents", "shopify", "commercetools", "akeneo"}


def pipe_stream() -> Stream:
    """The external test package's format: 'id|title|brand' lines, '-id' deletes."""
    values = [b"pipe-1|Linen Summer Shirt|Acme", b"pipe-2|Oak Side Table|Woodhaus", b"-pipe-1"]
    values += [b"only|two", b"\xff\xfe"]
    stream = Stream("pipe", "pipe", [CatalogRecord(v) for v in values])
    for value in values[:2]:
        product_id, title, brand = value.decode().split("|")
        event = {
            "id": "pipe-" + hashlib.sha256(value).hexdigest()[:16],
            "type": "product.created",
            "source": "pipe://test",
            "time": "2026-01-01T00:00:00Z",
            "tenant": "pipe-shop",
            "data": {"product_id": product_id, "title": title, "brand": brand},
        }
        stream.events.append(ProductEvent.model_validate(event))
    stream.deleted.append(("pipe-shop", "pipe-1"))
    stream.dead.update({"schema": 1, "decode": 1})
    return stream


def install_external_format(target: Path) -> Path:
    """pip-installs the fixture package (its entry point names the format 'pipe') into target."""
    source = target.parent / "ext-source"
    shutil.copytree(REPO / "tests" / "fixtures" / "ext_format", source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
    )
    return target


def create_topics(bootstrap: str, names: list[str]) -> None:
    """One partition each: a stream's records keep their order whatever their keys."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 1, 1) for name in names])
    finally:
        admin.close()


def send(bootstrap: str, topic: str, records: list[CatalogRecord]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for r in records:
            producer.send(topic, key=r.key, value=r.value, headers=list(r.headers))
        producer.flush()
    finally:
        producer.close()


def read_all(
    bootstrap: str, env: dict[str, str], worker: WorkerProcess, done: Callable[[Outputs], bool]
) -> Outputs:
    reader = OutputReader(
        bootstrap,
        env["COPYFLOW_TOPICS__SUGGESTIONS"],
        env["COPYFLOW_TOPICS__PRODUCTS_DLQ"],
        1,
        [env["COPYFLOW_FORMATS__WRITE_BACK_TOPIC"]]
        if "COPYFLOW_FORMATS__WRITE_BACK_TOPIC" in env
        else [],
    )
    try:
        outputs = reader.wait_for(done, timeout_s=600, worker=worker)
        for _ in range(4):  # anything late would show here
            outputs = reader.poll()
        return outputs
    finally:
        reader.close()


def test_every_format_gives_the_suggestions_of_its_equivalent_product_events(
    kafka_bootstrap: str,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    names = sorted(p.name.removesuffix(".records.jsonl") for p in EXAMPLES.glob("*.records.jsonl"))
    streams = [expected_stream(name) for name in names] + [pipe_stream()]
    suffix = uuid.uuid4().hex[:8]
    topic = {s.name: f"in-{s.name}-{suffix}" for s in streams}
    bad = {s.name: corpus(s.records) for s in streams if s.fmt != "pipe"}

    def env_of(role: str, **extra: str) -> dict[str, str]:
        return {
            **worker_env,
            "COPYFLOW_KAFKA__GROUP_ID": f"formats-{role}-{suffix}",
            "COPYFLOW_TOPICS__PRODUCTS": f"products-{role}-{suffix}",
            "COPYFLOW_TOPICS__PRODUCTS_DLQ": f"dlq-{role}-{suffix}",
            "COPYFLOW_TOPICS__SUGGESTIONS": f"suggestions-{role}-{suffix}",
            "COPYFLOW_TOPICS__PARTITIONS": "1",
            "COPYFLOW_CACHE__PREFIX": f"formats-{role}-{suffix}",
            **extra,
        }

    # The worker reading every format: the external package is on its path.
    external = install_external_format(tmp_path / "site")
    inputs = {topic[s.name]: s.fmt for s in streams}
    formats_env = env_of(
        "formats",
        COPYFLOW_FORMATS__INPUTS=json.dumps(inputs),
        COPYFLOW_FORMATS__WRITE_BACK_TOPIC=f"updates-{suffix}",
        COPYFLOW_FORMATS__OPTIONS=json.dumps({"pipe": {"tenant": "pipe-shop"}}),
        PYTHONPATH=f"{worker_env['PYTHONPATH']}:{external}",
    )
    equivalent_env = env_of("equivalent")
    # Every topic made here before a worker or a reader asks for it: a broker that creates
    # topics on first use would otherwise give them its own partition count.
    names = ("PRODUCTS", "SUGGESTIONS", "PRODUCTS_DLQ")
    outputs = [env[f"COPYFLOW_TOPICS__{n}"] for env in (formats_env, equivalent_env) for n in names]
    create_topics(
        kafka_bootstrap,
        [*topic.values(), *outputs, formats_env["COPYFLOW_FORMATS__WRITE_BACK_TOPIC"]],
    )
    for stream in streams:
        send(kafka_bootstrap, topic[stream.name], stream.records)
        send(kafka_bootstrap, topic[stream.name], [r for _, r in bad.get(stream.name, [])])
    equivalent = [e for s in streams for e in s.events]
    first = equivalent[0]
    sentinel = first.model_copy(
        update={"id": "sentinel", "data": first.data.model_copy(update={"product_id": "sentinel"})}
    )
    send(
        kafka_bootstrap,
        equivalent_env["COPYFLOW_TOPICS__PRODUCTS"],
        [
            CatalogRecord(e.model_dump_json().encode(), e.data.product_id.encode())
            for e in [*equivalent, sentinel]
        ],
    )

    logs = tmp_path
    formats_worker = WorkerProcess(formats_env, logs / "formats.log")
    equivalent_worker = WorkerProcess(equivalent_env, logs / "equivalent.log")
    try:
        want_dead = sum(sum(s.dead.values()) for s in streams) + sum(map(len, bad.values()))
        want_deleted = sum(len(s.deleted) for s in streams)
        got = read_all(
            kafka_bootstrap,
            formats_env,
            formats_worker,
            lambda o: len(o.dead) >= want_dead and len(o.deleted) >= want_deleted,
        )
        same = read_all(
            kafka_bootstrap,
            equivalent_env,
            equivalent_worker,
            lambda o: any(s.product_id == "sentinel" for s in o.suggestions),
        )
        assert formats_worker.process.poll() is None, formats_worker.log_tail()
    finally:
        formats_worker.stop()
        equivalent_worker.stop()

    # The same suggestions (ids cover tenant, content, channel, model and checks), each once.
    published = sorted((str(s.suggestion_id), s.source_event_id) for s in got.suggestions)
    wanted = sorted(
        (str(s.suggestion_id), s.source_event_id)
        for s in same.suggestions
        if s.product_id != "sentinel"
    )
    assert published == wanted
    assert len(published) >= len(streams) * 2

    # Deletions: one tombstone each, keyed by product id, naming the tenant.
    deleted = sorted((h[headers.DELETED_TENANT], key) for key, h in got.deleted)
    assert deleted == sorted(d for s in streams for d in s.deleted)

    # Dead letters: the malformed records' kinds, then the corpus; each from its topic.
    by_topic: dict[str, Counter[str]] = {}
    for letter in got.dead:
        kinds = by_topic.setdefault(letter.headers[dead_letters.SOURCE_TOPIC], Counter())
        kinds[letter.headers[dead_letters.KIND]] += 1
        assert letter.headers[dead_letters.REASON]
    for stream in streams:
        kinds = by_topic.get(topic[stream.name], Counter())
        assert kinds.total() == stream.dead.total() + len(bad.get(stream.name, [])), stream.name
        for kind, count in stream.dead.items():
            assert kinds[kind] >= count, (stream.name, kind, kinds)

    # Write-back: each suggestion from a format with an update document has one, keyed alike.
    updates = got.other.get(formats_env["COPYFLOW_FORMATS__WRITE_BACK_TOPIC"], [])
    writes = [s for s in got.suggestions if _format_of(s.source_event_id, streams) in WRITES_BACK]
    assert len(updates) == len(writes) > 0
    assert Counter(k for k, _ in updates) == Counter(s.product_id.encode() for s in writes)
    for _, value in updates:
        assert isinstance(json.loads(value or b""), dict)


def _format_of(event_id: str, streams: list[Stream]) -> str:
    for stream in streams:
        if any(e.id == event_id for e in stream.events):
            return stream.fmt
    raise AssertionError(f"no stream has event {event_id}")
