"""Build the runtime objects from Settings, turning bad settings into errors that name them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from copyflow.consumer.pipeline import Pipeline
from copyflow.consumer.pool import WorkerPool, resolve_devices
from copyflow.plugins.catalog import JsonCatalogAdapter
from copyflow.plugins.generators import get_prompt
from copyflow.plugins.generators.spec import TransformersSpec, generation_dtype

if TYPE_CHECKING:
    from copyflow.plugins.generators.hf import TransformersGenerator
from copyflow.plugins.generators.smollm2 import DEFAULT_MODEL, prepare_default_model
from copyflow.plugins.review import CopyReviewer
from copyflow.schemas import Settings, SettingsError
from copyflow.schemas.settings import setting_error

log = logging.getLogger(__name__)


def model_location(settings: Settings) -> str:
    """The default model's prepared directory (prepared on first use), a local dir, or a hub id."""
    name = settings.model.name
    if name == DEFAULT_MODEL:
        return str(prepare_default_model(settings.model.cache_dir))
    local = Path(name).expanduser()
    return str(local) if local.is_dir() else name


def _check_prompt(loc: tuple[str, str], version: str) -> None:
    try:
        get_prompt(version)
    except ValueError as exc:
        raise setting_error(loc, str(exc)) from None


def build_spec(settings: Settings) -> TransformersSpec:
    model = settings.model
    _check_prompt(("model", "prompt_version"), model.prompt_version)
    # auto is settled here, once: every worker process and the cache key then agree on it.
    dtype = generation_dtype(model.dtype, resolve_devices(settings.pool.devices)[0])
    return TransformersSpec(
        location=model_location(settings),
        prompt_version=model.prompt_version,
        name=model.name,
        dtype=dtype,
        max_new_tokens=model.max_new_tokens,
        max_input_tokens=model.max_input_tokens,
        batch_size=model.batch_size,
        max_title_tokens=model.max_title_tokens,
        max_description_tokens=model.max_description_tokens,
    )


def build_trainer_spec(settings: Settings) -> TransformersSpec:
    """The workers' model, as the trainer trains adapters on it (with trainer.prompt_version)."""
    _check_prompt(("trainer", "prompt_version"), settings.trainer.prompt_version)
    return build_spec(settings)


def build_generator(settings: Settings) -> TransformersGenerator:
    """A generator in this process, on the first configured device (for `copyflow generate`)."""
    spec = build_spec(settings)
    try:
        return spec.build(resolve_devices(settings.pool.devices)[0])
    except (OSError, ValueError) as exc:
        raise model_error(spec.location, exc) from None


def build_pool(settings: Settings) -> WorkerPool:
    pool = settings.pool
    return WorkerPool(
        build_spec(settings),
        resolve_devices(pool.devices),
        max_batch=settings.model.batch_size,
        max_wait_s=pool.max_wait_s,
        capacity=pool.capacity,
        threads_per_cpu_worker=pool.threads_per_cpu_worker,
    )


def build_pipeline(settings: Settings) -> Pipeline:
    reviewer = CopyReviewer(settings.checks.banned_phrases)
    return Pipeline(JsonCatalogAdapter(), settings.worker.max_event_bytes, reviewer)


def model_error(location: str, exc: BaseException) -> SettingsError:
    return setting_error(("model", "name"), f"cannot load model {location!r}: {exc}")
