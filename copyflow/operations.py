"""`copyflow replay` and `copyflow backfill`: operator runs through the worker's own
processing (cache, single flight, unchanged-content skip, adapters, checks), publishing to the
same topics with a `copyflow.run` header naming the run."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import ConsumerRecord

from copyflow.backfill import Line, file_digest, read_catalog, read_format_records
from copyflow.consumer.adapters import AdapterRouter, ControlListener
from copyflow.consumer.app import Copywriter, RunOptions
from copyflow.consumer.metrics import FlowStats
from copyflow.consumer.replay import Bound, TopicWindow, count_window, run_id
from copyflow.consumer.runs import Checkpoint, Pacer, Summary, run_batches
from copyflow.consumer.worker import build_cache, extra_topics
from copyflow.plugins.catalog.records import is_record_file
from copyflow.plugins.transport.sink import KafkaSink, new_producer
from copyflow.plugins.transport.source import Records
from copyflow.plugins.transport.topics import ensure_topics
from copyflow.schemas import Settings
from copyflow.wiring import build_pipeline, build_pool

log = logging.getLogger(__name__)

RUN_HEADER = "copyflow.run"


@dataclass(frozen=True)
class Request:
    rate: float | None
    force: bool
    tenant: str | None
    format: str | None = None  # every record in this format; None: each topic's own


async def _process(
    settings: Settings,
    name: str,
    request: Request,
    batches: AsyncIterator[tuple[Records, Checkpoint]],
    total: int | None,
) -> Summary:
    """Start what the worker runs (pool, cache, adapters, a producer), run the batches, and
    stop it all; SIGINT or SIGTERM stops after the batch in hand."""
    ensure_topics(settings.kafka, settings.topics, extra_topics(settings))
    pipeline = build_pipeline(settings, request.format)
    pool = build_pool(settings)
    cache = build_cache(settings)
    router = AdapterRouter(pool)
    control = ControlListener(settings.kafka, settings.topics.control, router)
    producer = new_producer(settings.kafka, client_id=f"copyflow-{name}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await pool.start()
        await control.start()
        await producer.start()
        options = RunOptions(
            force=request.force,
            tenant=request.tenant,
            headers=((RUN_HEADER, name.encode()),),
        )
        copywriter = Copywriter(
            settings, pipeline, pool, cache, FlowStats(), KafkaSink(producer), router, options
        )
        return await run_batches(batches, copywriter, Pacer(request.rate), stop, total, name)
    finally:
        await producer.stop()
        await control.stop()
        await pool.close()
        if cache is not None:
            await cache.client.aclose()
        for signum in (signal.SIGINT, signal.SIGTERM):  # a signal while stopping: ignored
            loop.remove_signal_handler(signum)


async def replay(
    settings: Settings,
    topic: str,
    start: Bound,
    stop: Bound | None,
    request: Request,
    dry_run: bool = False,
    restart: bool = False,
) -> Summary | None:
    name = run_id(topic, start, stop, request.tenant, request.force, request.format)
    group = f"copyflow-{name}"
    async with TopicWindow(settings.kafka, topic, group, settings.worker.take_batch) as reader:
        window = await reader.resolve(start, stop, resume=not (dry_run or restart))
        if dry_run:
            pipeline = build_pipeline(settings, request.format)
            partitions, tenants = await count_window(reader, window, pipeline)
            print(f"{window.size()} events in the window of {topic}")
            for partition in sorted(window.start):
                print(
                    f"  partition {partition}: offsets {window.start[partition]}.."
                    f"{window.stop[partition]}, {partitions[partition]} events"
                )
            for tenant, count in tenants.most_common():
                print(f"  tenant {tenant}: {count} events")
            return None
        print(
            f"{name}: {window.size()} events to process (consumer group {group})", file=sys.stderr
        )
        if not window.size():
            print(f"{name}: nothing left to do (--restart runs it again)", file=sys.stderr)
            return Summary()
        return await _process(
            settings, name, request, reader.batches(window, commit=True), window.size()
        )


def _state_file(settings: Settings, name: str) -> Path:
    return settings.worker.data_dir.expanduser() / "backfill" / f"{name}.json"


async def _file_batches(
    lines: list[Line], done: int, take: int, state: Path, source: str
) -> AsyncIterator[tuple[Records, Checkpoint]]:
    """The good lines after the first `done` lines, as records; each checkpoint saves how many
    lines are done."""

    def batch(
        pending: list[ConsumerRecord[bytes, bytes]], finished: int
    ) -> tuple[Records, Checkpoint]:
        async def checkpoint() -> None:
            state.parent.mkdir(parents=True, exist_ok=True)
            temporary = state.with_suffix(".tmp")
            temporary.write_text(json.dumps({"lines_done": finished}))
            temporary.replace(state)

        return pending, checkpoint

    pending: list[ConsumerRecord[bytes, bytes]] = []
    for index in range(done, len(lines)):
        line = lines[index]
        if line.event is None:
            continue
        pending.append(
            ConsumerRecord(
                source, 0, line.number, 0, 0, line.key, line.event, None, 0, 0, line.headers
            )
        )
        if len(pending) == take:
            yield batch(pending, index + 1)
            pending = []
    if pending:
        yield batch(pending, len(lines))


async def backfill(
    settings: Settings, path: Path, tenant: str, request: Request, restart: bool = False
) -> tuple[Summary, list[Line]]:
    """Returns the summary and the bad lines (each reported on standard error)."""
    # The same file, tenant and --force name the same run, which is how it resumes.
    identity = f"{file_digest(path)}\x1f{tenant}\x1f{request.force}"
    if request.format is not None:
        identity += f"\x1f{request.format}"
    name = "backfill-" + hashlib.sha256(identity.encode()).hexdigest()[:12]
    own = request.format in (None, "copyflow") and not is_record_file(path)
    lines = list(read_catalog(path, tenant) if own else read_format_records(path))
    bad = [line for line in lines if line.event is None]
    for line in bad:
        print(f"{path}:{line.number}: {line.error}", file=sys.stderr)
    state = _state_file(settings, name)
    done = 0
    if state.is_file() and not restart:
        done = int(json.loads(state.read_text())["lines_done"])
        if done:
            print(f"{name}: resuming after line {done} of {len(lines)}", file=sys.stderr)
    todo = sum(1 for line in lines[done:] if line.event is not None)
    if not todo:
        print(f"{name}: nothing left to do (--restart runs it again)", file=sys.stderr)
        return Summary(), bad
    batches = _file_batches(lines, done, settings.worker.take_batch, state, f"file:{path.name}")
    summary = await _process(settings, name, request, batches, todo)
    return summary, bad
