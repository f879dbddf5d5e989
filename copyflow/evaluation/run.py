"""Run the systems over the same products and score them.

- original: the merchant's own title and description;
- naive: one plain prompt (prompt version ``naive``), the raw answer, no checks;
- copyflow: the configured prompt, the judge's choice among the model's copy, its repair and
  the candidates built from the product's fields, and the channel fit, exactly as the worker
  builds suggestions;
- composed: no model: compose_title for the title, template_description for the description.

With layouts (``copyflow eval --learn-layouts FILE``: title layouts learned from another set
of accepted titles), copyflow and composed lay composed titles out as a worker that was told
those layouts does.

Generation goes through the worker pool, one pass per generating system (naive, copyflow);
the judge scores every system's copy (copyflow.evaluation.scores.judge_figures).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from copyflow.consumer.pipeline import Job, Pipeline
from copyflow.consumer.pool import Outcome, WorkerPool
from copyflow.evaluation import SYSTEMS
from copyflow.evaluation.data import Item
from copyflow.evaluation.scores import Copy, Referee, score, source_shares
from copyflow.plugins.candidates import compose_title, template_description
from copyflow.plugins.channels import ChannelRules, get_channel
from copyflow.plugins.generators import GenerationRequest, GenerationResult
from copyflow.plugins.layouts import TitleLayouts
from copyflow.plugins.transport.dead_letters import DeadLetter
from copyflow.plugins.validators import Grounding
from copyflow.schemas import ModelInfo, ProductEvent, Settings, Suggestion
from copyflow.wiring import build_pipeline, build_pool


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


def _job(item: Item, channel: str, layouts: TitleLayouts | None) -> Job:
    event = ProductEvent(
        id=f"eval-{item.product.product_id}",
        type="product.updated",
        source="copyflow-eval",
        time=datetime.now(UTC),
        tenant="eval",
        data=item.product.model_copy(update={"channels": [channel]}),
    )
    return Job(event, channel, None, layouts)


def _naive_copy(item: Item, outcome: GenerationResult) -> Copy:
    """The raw answer as a naive integration would use it: parsed when it parses, else its
    first line as the title and the rest as the description."""
    if outcome.title is not None and outcome.description is not None:
        return Copy(item, outcome.title, outcome.description)
    first, _, rest = outcome.raw_text.strip().partition("\n")
    return Copy(item, first.strip(), " ".join(rest.split()))


def _composed_copy(item: Item, rules: ChannelRules, layouts: TitleLayouts | None) -> Copy:
    layout = layouts.for_product(item.product) if layouts else None
    title = compose_title(item.product, rules.title_max, layout)
    return Copy(item, title, template_description(item.product, title, rules.description_max))


def _suggested_copy(item: Item, suggestion: Suggestion) -> Copy:
    return Copy(
        item,
        suggestion.title,
        suggestion.description,
        improved=bool(suggestion.improved),
        fallback_used=suggestion.fallback_used,
        title_source=suggestion.title_source,
        description_source=suggestion.description_source,
    )


def evaluate(
    settings: Settings,
    items: Sequence[Item],
    channel: str,
    systems: Sequence[str] = SYSTEMS,
    layouts: TitleLayouts | None = None,
) -> dict[str, Any]:
    """Every system named in systems (SYSTEMS by default) over the items, scored. layouts:
    learned title layouts for copyflow and composed (None: the default layout)."""
    unknown = set(systems) - set(SYSTEMS)
    if unknown or not systems:
        raise ValueError(f"systems: choose from {', '.join(SYSTEMS)}; got {', '.join(systems)}")
    chosen = [name for name in SYSTEMS if name in systems]
    rules = get_channel(channel)
    requests = [GenerationRequest(item.product, channel) for item in items]
    timings: dict[str, float] = {}
    model: ModelInfo | None = None
    pipeline: Pipeline = build_pipeline(settings)

    ours: list[Outcome] = []
    if "copyflow" in chosen:
        started = time.perf_counter()
        ours, model = asyncio.run(_generate(build_pool(settings), requests, "copyflow"))
        timings["copyflow_generation_s"] = time.perf_counter() - started

    naive: list[Outcome] = []
    if "naive" in chosen:
        naive_settings = settings.model_copy(deep=True)
        naive_settings.model.prompt_version = "naive"
        started = time.perf_counter()
        naive, naive_model = asyncio.run(_generate(build_pool(naive_settings), requests, "naive"))
        timings["naive_generation_s"] = time.perf_counter() - started
        model = model or naive_model

    suggestions: list[Suggestion | None] = [None] * len(items)
    before_guard: list[bool] = []
    if "copyflow" in chosen and model is not None:
        for index, (item, outcome) in enumerate(zip(items, ours, strict=True)):
            if isinstance(outcome, DeadLetter):
                continue
            try:
                job = _job(item, channel, layouts)
                served = pipeline.served_model(model)
                suggestions[index] = pipeline.build(job, outcome, served, 0.0)
            except ValueError:  # no valid suggestion (as the worker's dead letter): a failure
                continue
            if outcome.title is not None and outcome.description is not None:
                raw = f"{outcome.title}\n{outcome.description}"
                before_guard.append(bool(Grounding.of(item.product).unsupported(raw)))

    copies: dict[str, list[Copy]] = {}
    if "original" in chosen:
        copies["original"] = [Copy(i, i.product.title, i.product.description) for i in items]
    if "naive" in chosen:
        copies["naive"] = [
            _naive_copy(i, o)
            for i, o in zip(items, naive, strict=True)
            if isinstance(o, GenerationResult)
        ]
    if "copyflow" in chosen:
        copies["copyflow"] = [
            _suggested_copy(i, s) for i, s in zip(items, suggestions, strict=True) if s is not None
        ]
    if "composed" in chosen:
        copies["composed"] = [_composed_copy(i, rules, layouts) for i in items]

    referee = Referee(rules, pipeline.reviewer.judge)
    figures = {name: score(system, rules, referee) for name, system in copies.items()}
    extra: dict[str, Any] = {}
    if "copyflow" in chosen:
        made = [s for s in suggestions if s is not None]
        figures["copyflow"].update(
            {
                "repaired_rate": sum(
                    "repaired" in (s.title_source, s.description_source) for s in made
                )
                / max(1, len(made)),
                "parse_failure_rate": sum(not _passed(s, "parsed") for s in made)
                / max(1, len(made)),
                "unsupported_rate_before_guard": sum(before_guard) / max(1, len(before_guard)),
                "failed_generations": len(items) - len(made),
            }
        )
        extra["copyflow_sources"] = source_shares(copies["copyflow"])
    if "naive" in chosen:
        figures["naive"]["failed_generations"] = sum(isinstance(o, DeadLetter) for o in naive)
        figures["naive"]["parse_failure_rate"] = sum(
            isinstance(o, GenerationResult) and o.parse_error is not None for o in naive
        ) / max(1, len(naive))
    return {
        "channel": channel,
        "limits": {"title_max": rules.title_max, "description_max": rules.description_max},
        "products": len(items),
        "model": model.base if model else None,
        "model_revision": model.revision if model else None,
        "prompt_version": model.prompt_version if model else None,
        "timings": timings,
        "systems": figures,
        **extra,
        "title_lengths": {name: [len(c.title) for c in system] for name, system in copies.items()},
        "examples": [
            _example(
                item, rules, chosen, naive[index] if naive else None, suggestions[index], layouts
            )
            for index, item in enumerate(items[:10])
        ],
    }


def _example(
    item: Item,
    rules: ChannelRules,
    chosen: Sequence[str],
    answer: Outcome | None,
    suggestion: Suggestion | None,
    layouts: TitleLayouts | None,
) -> dict[str, Any]:
    """One product's title from each system (None where that system made none)."""
    layout = layouts.for_product(item.product) if layouts else None
    titles: dict[str, str | None] = {
        "original": item.product.title,
        "naive": _naive_copy(item, answer).title if isinstance(answer, GenerationResult) else None,
        "copyflow": suggestion.title if suggestion else None,
        "composed": compose_title(item.product, rules.title_max, layout),
    }
    return {
        "product_id": item.product.product_id,
        "reference": item.reference_title,
        **{name: titles[name] for name in chosen},
        "fallback": suggestion.fallback_used if suggestion else None,
        "title_source": suggestion.title_source if suggestion else None,
    }


def _passed(suggestion: Suggestion, name: str) -> bool:
    return any(c.name == name and c.passed for c in suggestion.checks)
