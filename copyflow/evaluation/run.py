"""Run the three systems over the same products and score them.

- original: the merchant's own title and description;
- naive: one plain prompt (prompt version ``naive``), the raw answer, no checks;
- copyflow: the configured prompt, the checks, one repair, the fallback and the channel fit,
  exactly as the worker builds suggestions.

Generation goes through the worker pool, one pass per generating system.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from consumer.dead_letters import DeadLetter
from consumer.pipeline import Job, Pipeline
from consumer.pool import Outcome, WorkerPool
from copyflow.evaluation.data import Item
from copyflow.evaluation.scores import Copy, score
from copyflow.wiring import build_pipeline, build_pool
from plugins.channels import get_channel
from plugins.generators import GenerationRequest, GenerationResult
from plugins.validators import Grounding
from schemas import ModelInfo, ProductEvent, Settings, Suggestion


async def _generate(
    pool: WorkerPool, requests: Sequence[GenerationRequest], label: str
) -> tuple[list[Outcome], ModelInfo]:
    """Every request through the pool at once (it bounds and batches them); the progress bar
    moves as each one is answered."""
    await pool.start()
    try:
        with tqdm(total=len(requests), desc=label, unit="product") as bar:

            async def one(request: GenerationRequest) -> Outcome:
                [outcome] = await pool.generate([request])
                bar.update(1)
                return outcome

            outcomes = await asyncio.gather(*(one(r) for r in requests))
        return list(outcomes), pool.model_info
    finally:
        await pool.close()


def _job(item: Item, channel: str) -> Job:
    event = ProductEvent(
        id=f"eval-{item.product.product_id}",
        type="product.updated",
        source="copyflow-eval",
        time=datetime.now(UTC),
        tenant="eval",
        data=item.product.model_copy(update={"channels": [channel]}),
    )
    return Job(event, channel)


def _naive_copy(item: Item, outcome: GenerationResult) -> Copy:
    """The raw answer as a naive integration would use it: parsed when it parses, else its
    first line as the title and the rest as the description."""
    if outcome.title is not None and outcome.description is not None:
        return Copy(item, outcome.title, outcome.description)
    first, _, rest = outcome.raw_text.strip().partition("\n")
    return Copy(item, first.strip(), " ".join(rest.split()))


def evaluate(settings: Settings, items: Sequence[Item], channel: str) -> dict[str, Any]:
    rules = get_channel(channel)
    requests = [GenerationRequest(item.product, channel) for item in items]
    timings: dict[str, float] = {}

    started = time.perf_counter()
    ours, model = asyncio.run(_generate(build_pool(settings), requests, "copyflow"))
    timings["copyflow_generation_s"] = time.perf_counter() - started

    naive_settings = settings.model_copy(deep=True)
    naive_settings.model.prompt_version = "naive"
    started = time.perf_counter()
    naive, _ = asyncio.run(_generate(build_pool(naive_settings), requests, "naive"))
    timings["naive_generation_s"] = time.perf_counter() - started

    pipeline: Pipeline = build_pipeline(settings)
    suggestions: list[Suggestion | None] = []
    before_guard: list[bool] = []
    for item, outcome in zip(items, ours, strict=True):
        if isinstance(outcome, DeadLetter):
            suggestions.append(None)
            continue
        suggestions.append(pipeline.build(_job(item, channel), outcome, model, latency_ms=0.0))
        if outcome.title is not None and outcome.description is not None:
            raw = f"{outcome.title}\n{outcome.description}"
            before_guard.append(bool(Grounding.of(item.product).unsupported(raw)))

    systems = {
        "original": [Copy(i, i.product.title, i.product.description) for i in items],
        "naive": [
            _naive_copy(i, o)
            for i, o in zip(items, naive, strict=True)
            if isinstance(o, GenerationResult)
        ],
        "copyflow": [
            Copy(i, s.title, s.description)
            for i, s in zip(items, suggestions, strict=True)
            if s is not None
        ],
    }
    figures = {name: score(copies, rules) for name, copies in systems.items()}
    made = [s for s in suggestions if s is not None]
    figures["copyflow"].update(
        {
            "fallback_rate": sum(s.fallback_used for s in made) / max(1, len(made)),
            "repaired_rate": sum(_passed(s, "repair") for s in made) / max(1, len(made)),
            "parse_failure_rate": sum(not _passed(s, "parsed") for s in made) / max(1, len(made)),
            "unsupported_rate_before_guard": sum(before_guard) / max(1, len(before_guard)),
            "failed_generations": len(items) - len(made),
        }
    )
    figures["naive"]["failed_generations"] = sum(isinstance(o, DeadLetter) for o in naive)
    figures["naive"]["parse_failure_rate"] = sum(
        isinstance(o, GenerationResult) and o.parse_error is not None for o in naive
    ) / max(1, len(naive))
    return {
        "channel": channel,
        "limits": {"title_max": rules.title_max, "description_max": rules.description_max},
        "products": len(items),
        "model": model.base,
        "model_revision": model.revision,
        "prompt_version": model.prompt_version,
        "timings": timings,
        "systems": figures,
        "title_lengths": {name: [len(c.title) for c in copies] for name, copies in systems.items()},
        "examples": [
            {
                "product_id": item.product.product_id,
                "original": item.product.title,
                "naive": _naive_copy(item, answer).title
                if isinstance(answer, GenerationResult)
                else None,
                "copyflow": suggestion.title if suggestion else None,
                "fallback": suggestion.fallback_used if suggestion else None,
            }
            for item, answer, suggestion in list(zip(items, naive, suggestions, strict=True))[:10]
        ],
    }


def _passed(suggestion: Suggestion, name: str) -> bool:
    return any(c.name == name and c.passed for c in suggestion.checks)
