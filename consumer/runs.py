"""Operator runs (replays and backfills): batches through the worker's own processing, at a
rate, with progress, a summary, and a checkpoint after each batch so a stopped run resumes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from tqdm import tqdm

from copyflow.consumer.app import BatchReport, Copywriter
from copyflow.plugins.transport.source import Records

Checkpoint = Callable[[], Awaitable[None]]


class Pacer:
    """At most rate events per second on average (None: no limit). The clock and sleep are
    injectable for tests."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.allowed = 0

    async def take(self, count: int) -> None:
        """Wait until count more events fit the rate."""
        if self.rate is None:
            return
        self.allowed += count
        due = self.started + (self.allowed - count) / self.rate
        delay = due - self.clock()
        if delay > 0:
            await self.sleep(delay)


@dataclass
class Summary:
    read: int = 0
    generated: int = 0
    cache_hits: int = 0
    skipped: int = 0
    unimproved: int = 0
    other_tenants: int = 0
    deleted: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_letters: int = 0
    suggestion_ids: list[str] = field(default_factory=list)
    interrupted: bool = False

    def add(self, report: BatchReport) -> None:
        self.read += report.events
        self.generated += report.generated
        self.cache_hits += report.cache_hits
        self.skipped += report.skipped
        self.unimproved += report.unimproved
        self.other_tenants += report.other_tenants
        self.deleted += report.deleted
        self.duplicates += report.duplicates
        self.ignored += report.ignored
        self.dead_letters += report.dead_letters
        self.suggestion_ids += report.suggestion_ids

    def line(self) -> str:
        parts = [
            f"read {self.read}",
            f"generated {self.generated}",
            f"cache hits {self.cache_hits}",
            f"skipped {self.skipped} (unchanged)",
            f"not improved {self.unimproved}",
            f"dead letters {self.dead_letters}",
        ]
        if self.other_tenants:
            parts.insert(5, f"other tenants {self.other_tenants}")
        # What only some catalog formats give: said when it happened.
        for count, what in (
            (self.deleted, "deleted"),
            (self.duplicates, "redelivered (dropped)"),
            (self.ignored, "records about no product copy"),
        ):
            if count:
                parts.insert(-1, f"{what} {count}")
        return ", ".join(parts)


async def run_batches(
    batches: AsyncIterator[tuple[Records, Checkpoint]],
    copywriter: Copywriter,
    pacer: Pacer,
    stop: asyncio.Event,
    total: int | None,
    desc: str,
) -> Summary:
    """Process each batch, then checkpoint it; stop (after the batch in hand) when stop is
    set. A batch is checkpointed only once its outputs are acknowledged."""
    summary = Summary()
    with tqdm(total=total, desc=desc, unit="event") as bar:
        async for records, checkpoint in batches:
            await pacer.take(len(records))
            summary.add(await copywriter.process(records))
            await checkpoint()
            bar.update(len(records))
            bar.set_postfix(generated=summary.generated, hits=summary.cache_hits)
            if stop.is_set():
                summary.interrupted = True
                break
    return summary
