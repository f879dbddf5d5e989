"""Build the runtime objects from Settings, turning bad settings into errors that name them."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from copyflow.consumer.pipeline import InputFormats, Pipeline
from copyflow.consumer.pool import WorkerPool, resolve_devices
from copyflow.plugins.catalog import CatalogFormat, Fetch, FormatContext, make_format
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


def build_pipeline(settings: Settings, only_format: str | None = None) -> Pipeline:
    """only_format: every record is read in this format (a file, a replay with --format);
    else each input topic in its own (formats.inputs)."""
    reviewer = CopyReviewer(settings.checks.banned_phrases)
    return Pipeline(build_formats(settings, only_format), settings.worker.max_event_bytes, reviewer)


def build_formats(settings: Settings, only_format: str | None = None) -> InputFormats:
    """Each input topic's format, made once per format name."""
    made: dict[str, CatalogFormat] = {}

    def get(name: str, loc: tuple[str, ...]) -> CatalogFormat:
        if name not in made:
            made[name] = _make_format(settings, name, loc)
        return made[name]

    if only_format is not None:
        return InputFormats.only(get(only_format, ("formats", "inputs")))
    inputs = settings.formats.inputs or {settings.topics.products: "copyflow"}
    by_topic = {topic: get(name, ("formats", "inputs", topic)) for topic, name in inputs.items()}
    return InputFormats(get("copyflow", ("formats", "inputs")), by_topic)


def _make_format(settings: Settings, name: str, loc: tuple[str, ...]) -> CatalogFormat:
    formats = settings.formats
    context = FormatContext(
        tenant=formats.tenant, options=formats.options.get(name, {}), fetch=_fetch_hook(settings)
    )
    try:
        return make_format(name, context)
    except KeyError as exc:  # UnknownFormat
        raise setting_error(loc, str(exc.args[0])) from None
    except (ValueError, TypeError) as exc:
        raise setting_error(("formats", "options", name), str(exc)) from None


def _fetch_hook(settings: Settings) -> Fetch | None:
    target = settings.formats.fetch
    if target is None:
        return None
    module_name, _, attribute = target.partition(":")
    try:
        found: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise setting_error(("formats", "fetch"), f"cannot load {target!r}: {exc}") from None
    if not callable(found):
        raise setting_error(("formats", "fetch"), f"{target!r} is not callable")
    hook: Fetch = found  # checked callable; its signature is documented
    return hook


def model_error(location: str, exc: BaseException) -> SettingsError:
    return setting_error(("model", "name"), f"cannot load model {location!r}: {exc}")
