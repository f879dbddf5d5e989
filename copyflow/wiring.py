"""Build the runtime objects from Settings, turning bad settings into errors that name them."""

from __future__ import annotations

import logging
from pathlib import Path

from consumer.pipeline import Pipeline
from plugins.catalog import JsonCatalogAdapter
from plugins.generators import get_prompt
from plugins.generators.hf import TransformersGenerator
from plugins.generators.smollm2 import DEFAULT_MODEL, prepare_default_model
from schemas import Settings, SettingsError
from schemas.settings import setting_env_name

log = logging.getLogger(__name__)


def model_location(settings: Settings) -> str:
    """The default model's prepared directory (prepared on first use), a local dir, or a hub id."""
    name = settings.model.name
    if name == DEFAULT_MODEL:
        return str(prepare_default_model(settings.model.cache_dir))
    local = Path(name).expanduser()
    return str(local) if local.is_dir() else name


def build_generator(settings: Settings) -> TransformersGenerator:
    model = settings.model
    try:
        prompt = get_prompt(model.prompt_version)
    except ValueError as exc:
        raise _setting_error(("model", "prompt_version"), str(exc)) from None
    location = model_location(settings)
    try:
        return TransformersGenerator(
            location,
            prompt,
            name=model.name,
            device=model.device,
            dtype=model.dtype,
            max_new_tokens=model.max_new_tokens,
            max_input_tokens=model.max_input_tokens,
            batch_size=model.batch_size,
        )
    except (OSError, ValueError) as exc:
        raise _setting_error(("model", "name"), f"cannot load model {location!r}: {exc}") from None


def build_pipeline(settings: Settings) -> Pipeline:
    return Pipeline(
        JsonCatalogAdapter(), build_generator(settings), settings.worker.max_event_bytes
    )


def _setting_error(loc: tuple[str, ...], message: str) -> SettingsError:
    return SettingsError(
        f"invalid settings:\n  {'.'.join(loc)} ({setting_env_name(loc)}): {message}"
    )
