"""One training run: examples -> LoRA adapter -> gate -> registry (and a report either way)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from copyflow.plugins.generators.spec import TransformersSpec, model_revision
from copyflow.plugins.review import CopyReviewer
from copyflow.schemas.settings import TrainerSettings
from copyflow.trainer.examples import GLOBAL, Example, ExampleStore
from copyflow.trainer.gate import Verdict, decide, evaluate
from copyflow.trainer.lora import train_lora
from copyflow.trainer.registry import Registry, Release, scope
from copyflow.trainer.report import write_report

log = logging.getLogger(__name__)


class NotEnoughExamples(ValueError):
    pass


@dataclass(frozen=True)
class Trained:
    verdict: Verdict
    release: Release | None
    report_dir: Path
    metrics: dict[str, Any]


def split(examples: Sequence[Example], share: float) -> tuple[list[Example], list[Example]]:
    """(train, holdout) by a hash of each example's id: stable as examples are added. With two
    examples or more neither side is left empty: a small set whose hashes all fall on one side
    gives the other side the example whose hash lies nearest to it."""

    def position(example: Example) -> float:
        return hashlib.sha256(example.example_id.encode()).digest()[0] / 256

    train = [e for e in examples if position(e) >= share]
    holdout = [e for e in examples if position(e) < share]
    if len(examples) >= 2 and not holdout:
        nearest = min(train, key=lambda e: (position(e), e.example_id))
        train.remove(nearest)
        holdout.append(nearest)
    elif len(examples) >= 2 and not train:
        nearest = max(holdout, key=lambda e: (position(e), e.example_id))
        holdout.remove(nearest)
        train.append(nearest)
    return train, holdout


def fingerprint(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for example in sorted(examples, key=lambda e: e.example_id):
        digest.update(example.model_dump_json().encode())
    return digest.hexdigest()[:16]


def serving(registry: Registry, tenant: str | None) -> Release | None:
    """What makes a tenant's copy now: its own adapter, else the global one, else none."""
    own = registry.current(tenant)
    if own is not None or tenant is None:
        return own
    return registry.current(None)


def train_once(
    spec: TransformersSpec,
    settings: TrainerSettings,
    tenant: str | None,
    reviewer: CopyReviewer,
    show_progress: bool = True,
    notes: dict[str, Any] | None = None,
) -> Trained:
    """Train a candidate on the scope's examples and release it if the gate passes. The
    global adapter learns only from the global store, never from a tenant's examples. notes:
    more figures for the report (how a bootstrap made its examples)."""
    store = ExampleStore(settings.store_dir)
    registry = Registry(settings.registry_dir)
    examples = [e for e in store.load(tenant or GLOBAL) if e.trainable]
    if len(examples) < settings.min_examples:
        raise NotEnoughExamples(
            f"{len(examples)} accepted or edited examples for {tenant or 'the global adapter'}; "
            f"training needs trainer.min_examples={settings.min_examples}"
        )
    train, holdout = split(examples, settings.holdout_share)
    if not holdout or not train:
        raise NotEnoughExamples(f"{len(examples)} examples leave no held-out or training set")
    started = datetime.now(UTC)
    work = registry.root / ".runs" / f"{scope(tenant)}-{started:%Y%m%dT%H%M%S%f}"
    adapter_dir = work / "adapter"

    # Examples per second and the time left, as tqdm shows them for a total in examples.
    with tqdm(total=None, desc="training", unit="example", disable=not show_progress) as bar:

        def progress(seen: int, total: int, loss: float) -> None:
            bar.total = total
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(seen - bar.n)

        result = train_lora(
            spec.location, settings.prompt_version, train, holdout, settings, adapter_dir, progress
        )

    current = serving(registry, tenant)
    # Both scored as workers serve them: one base model, the adapters loaded unmerged beside
    # each other and named per request, through the workers' own decoding path.
    generator = spec.build(settings.device)
    current_name = None
    if current is not None:
        current_name = "gate_current"
        location = str(registry.location(current))
        generator.load_adapter(current_name, location, current.prompt_version)
    generator.load_adapter("gate_candidate", str(adapter_dir), settings.prompt_version)
    log.info("evaluating current and candidate on %d held-out examples", len(holdout))
    current_scores = evaluate(generator, holdout, reviewer, current_name)
    candidate_scores = evaluate(generator, holdout, reviewer, "gate_candidate")
    verdict = decide(candidate_scores, current_scores, settings.margin)
    version = registry.next_version(tenant) if verdict.release else None
    metrics: dict[str, Any] = {
        "scope": tenant or "global adapter",
        "train_examples": len(train),
        "holdout_examples": len(holdout),
        "epochs": settings.epochs,
        "device": result.device,
        "dtype": result.dtype,
        "seconds": result.seconds,
        "peak_rss_mb": result.peak_rss_mb,
        "data_fingerprint": fingerprint(examples),
        "current_name": current.version if current else "base model",
        "current": current_scores,
        "candidate": candidate_scores,
        "final_training_loss": result.losses[-1],
        "holdout_losses": result.holdout_losses,
        "released": verdict.release,
        "version": version,
        "verdict": verdict.reason,
        **(notes or {}),
    }
    reports = write_report(work, metrics, result.losses, result.holdout_losses)
    release = None
    if verdict.release and version is not None:
        release = Release(
            version=version,
            tenant=tenant,
            base_model=spec.name or spec.location,
            base_revision=model_revision(spec.location),
            prompt_version=settings.prompt_version,
            metrics={k: float(v) for k, v in candidate_scores.items()},
            data_fingerprint=metrics["data_fingerprint"],
            examples=len(train),
        )
        registry.add(adapter_dir, release, extra=reports)
        registry.promote(tenant, version)
        log.info("released %s adapter %s", tenant or "global", version)
    return Trained(verdict, release, work, metrics)
