"""Merchants' decisions in, training examples out.

`copyflow trainer` reads the suggestions (each carries the product it was made from) and the
feedback on them in a consumer group of its own. A decision is joined with its suggestion
through an index kept on disk beside the example store; a decision that arrives before its
suggestion is parked there until the suggestion does. Every step is idempotent (the index is
keyed by suggestion id, the store keeps one example per suggestion), so a batch replayed after
a crash changes nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.plugins.transport.headers import DELETED_TENANT
from copyflow.plugins.transport.source import Record, Records
from copyflow.schemas import Feedback, Product, Suggestion
from copyflow.schemas.settings import TopicSettings
from copyflow.trainer.examples import GLOBAL, Example, ExampleStore, from_decision

log = logging.getLogger(__name__)


class SuggestionIndex:
    """Suggestions by id, and the decisions still waiting for theirs (SQLite)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS suggestions (id TEXT PRIMARY KEY, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS parked (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                suggestion_id TEXT NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS parked_by_suggestion ON parked (suggestion_id);
            CREATE TABLE IF NOT EXISTS products (
                tenant TEXT NOT NULL,
                product_id TEXT NOT NULL,
                body TEXT NOT NULL,
                PRIMARY KEY (tenant, product_id)
            );
            """
        )

    def add(self, suggestions: Sequence[Suggestion]) -> None:
        """Index suggestions, and keep each tenant's products as the latest suggestion on
        them shows them (what a bootstrap learns from)."""
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO suggestions VALUES (?, ?)",
                [(str(s.suggestion_id), s.model_dump_json()) for s in suggestions],
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO products VALUES (?, ?, ?)",
                [(s.tenant, s.product_id, s.input.model_dump_json()) for s in suggestions],
            )

    def forget(self, tenant: str, product_id: str) -> None:
        """A deleted product is no longer part of its tenant's catalog."""
        with self.db:
            self.db.execute(
                "DELETE FROM products WHERE tenant = ? AND product_id = ?", (tenant, product_id)
            )

    def product_counts(self) -> dict[str, int]:
        """Distinct products seen per tenant."""
        rows = self.db.execute("SELECT tenant, count(*) FROM products GROUP BY tenant")
        return {tenant: int(count) for tenant, count in rows}

    def products(self, tenant: str) -> list[Product]:
        rows = self.db.execute("SELECT body FROM products WHERE tenant = ?", (tenant,))
        return [Product.model_validate_json(row[0]) for row in rows]

    def get(self, ids: Iterable[str]) -> dict[str, Suggestion]:
        wanted = list(set(ids))
        found: dict[str, Suggestion] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT id, body FROM suggestions WHERE id IN ({marks})", chunk)
            found.update((row[0], Suggestion.model_validate_json(row[1])) for row in rows)
        return found

    def park(self, decisions: Sequence[Feedback]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT INTO parked (suggestion_id, body) VALUES (?, ?)",
                [(str(f.suggestion_id), f.model_dump_json()) for f in decisions],
            )

    def waiting(self, suggestion_ids: Iterable[str]) -> list[tuple[int, Feedback]]:
        """The parked decisions on these suggestions, oldest first, with their row numbers
        (for release() once they are stored)."""
        ids = list(set(suggestion_ids))
        taken: list[tuple[int, Feedback]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT seq, body FROM parked WHERE suggestion_id IN ({marks})", chunk
            ).fetchall()
            taken += [(row[0], Feedback.model_validate_json(row[1])) for row in rows]
        return sorted(taken, key=lambda item: item[0])

    def release(self, rows: Sequence[int]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM parked WHERE seq = ?", [(row,) for row in rows])

    def parked(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM parked").fetchone()[0])

    def close(self) -> None:
        self.db.close()


@dataclass
class Ingested:
    suggestions: int = 0
    decisions: int = 0
    examples: Counter[str] = field(default_factory=Counter)  # new or changed, per tenant
    parked: int = 0
    dead: list[tuple[Record, DeadLetter]] = field(default_factory=list)


class FeedbackIngestor:
    def __init__(self, topics: TopicSettings, store: ExampleStore, index: SuggestionIndex) -> None:
        self.topics = topics
        self.store = store
        self.index = index

    def _forget(self, record: Record) -> None:
        tenant = dict(record.headers).get(DELETED_TENANT)
        if tenant is None or record.key is None:
            log.error(
                "skipped a tombstone without its tenant at %s:%d", record.topic, record.offset
            )
            return
        self.index.forget(tenant.decode(), record.key.decode())

    def ingest(self, records: Records) -> Ingested:
        """Index the batch's suggestions, join its decisions (and parked ones whose
        suggestion just came) and store the examples; unusable feedback is returned as
        dead letters for the caller to publish."""
        result = Ingested()
        suggestions: list[Suggestion] = []
        decisions: list[Feedback] = []
        sources: dict[int, Record] = {}  # a decision of this batch -> its record
        for record in records:
            if record.topic == self.topics.suggestions and record.value is None:
                # A deletion's tombstone: what came before it in the batch is indexed first.
                self.index.add(suggestions)
                suggestions = []
                self._forget(record)
            elif record.topic == self.topics.suggestions:
                try:
                    suggestions.append(Suggestion.model_validate_json(record.value or b""))
                except ValidationError as exc:  # not ours to dead-letter: skip it, loudly
                    log.error("skipped an unreadable suggestion at %s", _where(record, exc))
            elif record.topic == self.topics.feedback:
                decoded = _decode_feedback(record)
                if isinstance(decoded, DeadLetter):
                    result.dead.append((record, decoded))
                else:
                    decisions.append(decoded)
                    sources[id(decoded)] = record
        self.index.add(suggestions)
        parked = self.index.waiting(str(s.suggestion_id) for s in suggestions)
        waiting = [decision for _, decision in parked]
        known = self.index.get(str(d.suggestion_id) for d in [*waiting, *decisions])

        examples: list[Example] = []
        unmatched: list[Feedback] = []
        for decision in [*waiting, *decisions]:
            suggestion = known.get(str(decision.suggestion_id))
            if suggestion is None:
                unmatched.append(decision)
                continue
            problem = _mismatch(suggestion, decision)
            if problem is None:
                examples.append(from_decision(suggestion, decision))
            elif id(decision) in sources:
                result.dead.append((sources[id(decision)], DeadLetter("join", problem)))
            else:
                log.error("dropped a parked decision: %s", problem)
        for tenant in {e.tenant for e in examples}:
            result.examples[tenant] = self.store.add(e for e in examples if e.tenant == tenant)
        # Only now: a crash before this point finds the parked decisions still parked.
        self.index.park(unmatched)
        self.index.release([row for row, _ in parked])
        result.suggestions = len(suggestions)
        result.decisions = len(decisions)
        result.parked = len(unmatched)
        return result


def _decode_feedback(record: Record) -> Feedback | DeadLetter:
    try:
        return Feedback.model_validate(json.loads(record.value or b""))
    except json.JSONDecodeError as exc:
        return DeadLetter("decode", f"not JSON: {exc}")
    except ValidationError as exc:
        return DeadLetter("schema", str(exc))


def _mismatch(suggestion: Suggestion, decision: Feedback) -> str | None:
    """A decision may only teach the tenant and product its suggestion was made for."""
    if suggestion.tenant == GLOBAL:
        return f"tenant name {GLOBAL!r} is reserved for the adapter every tenant shares"
    if decision.tenant != suggestion.tenant:
        return (
            f"feedback from tenant {decision.tenant!r} on a suggestion of another tenant "
            f"({decision.suggestion_id})"
        )
    if decision.product_id != suggestion.product_id:
        return (
            f"feedback names product {decision.product_id!r}, its suggestion "
            f"{decision.suggestion_id} is for {suggestion.product_id!r}"
        )
    return None


def _where(record: Record, exc: Exception) -> str:
    return f"{record.topic}:{record.partition}@{record.offset}: {str(exc).splitlines()[0]}"
