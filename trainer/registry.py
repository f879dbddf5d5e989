"""Released adapters: versioned folders per scope (a tenant, or the global adapter).

    <root>/<scope>/<version>/adapter_model.safetensors   the weights (safetensors only)
                            /adapter_config.json         peft's config
                            /release.json                base model, metrics, data fingerprint
    <root>/<scope>/history                               promoted versions, oldest first

Every file is written once, under a temporary name, then renamed; the only file that changes
is history, and it is replaced whole. Nothing here needs a file system beyond put, get, list
and rename, so the layout maps onto an object store.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field

from copyflow.schemas import AdapterReleased
from copyflow.trainer.examples import GLOBAL, folder_name

_WEIGHTS = ("adapter_model.safetensors", "adapter_config.json")


class RegistryError(ValueError):
    pass


class Release(BaseModel):
    version: str
    tenant: str | None = Field(description="None for the global adapter.")
    base_model: str
    base_revision: str
    prompt_version: str
    metrics: dict[str, float] = Field(default_factory=dict)
    data_fingerprint: str
    examples: int
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def scope(tenant: str | None) -> str:
    return GLOBAL if tenant is None else folder_name(tenant)


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    def _scope(self, tenant: str | None) -> Path:
        return self.root / scope(tenant)

    def location(self, release: Release) -> Path:
        return self._scope(release.tenant) / release.version

    def releases(self, tenant: str | None) -> list[Release]:
        folder = self._scope(tenant)
        if not folder.is_dir():
            return []
        found = [
            Release.model_validate_json((path / "release.json").read_text())
            for path in folder.iterdir()
            if (path / "release.json").is_file()
        ]
        return sorted(found, key=lambda r: r.version)

    def _history(self, tenant: str | None) -> list[str]:
        path = self._scope(tenant) / "history"
        return path.read_text().split() if path.is_file() else []

    def _write_history(self, tenant: str | None, versions: list[str]) -> None:
        path = self._scope(tenant) / "history"
        temporary = path.with_suffix(".tmp")
        temporary.write_text("".join(f"{v}\n" for v in versions))
        os.replace(temporary, path)

    def current(self, tenant: str | None) -> Release | None:
        history = self._history(tenant)
        if not history:
            return None
        return self.get(tenant, history[-1])

    def get(self, tenant: str | None, version: str) -> Release:
        path = self._scope(tenant) / version / "release.json"
        if not path.is_file():
            known = ", ".join(r.version for r in self.releases(tenant)) or "none"
            raise RegistryError(f"no adapter version {version!r} (known: {known})")
        return Release.model_validate_json(path.read_text())

    def add(self, adapter_dir: Path, release: Release, extra: list[Path] | None = None) -> Path:
        """Store a trained adapter (weights, config, and extra files such as its report) as a
        new version; it serves only once promoted."""
        missing = [name for name in _WEIGHTS if not (adapter_dir / name).is_file()]
        if missing:
            raise RegistryError(f"{adapter_dir} lacks {', '.join(missing)}")
        target = self._scope(release.tenant) / release.version
        if target.exists():
            raise RegistryError(f"adapter version {release.version} exists already")
        staging = target.with_name(f".{release.version}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in _WEIGHTS:
            shutil.copy2(adapter_dir / name, staging / name)
        for path in extra or []:
            shutil.copy2(path, staging / path.name)
        (staging / "release.json").write_text(release.model_dump_json(indent=2))
        os.replace(staging, target)
        return target

    def next_version(self, tenant: str | None) -> str:
        numbers = [int(r.version.lstrip("v")) for r in self.releases(tenant)]
        return f"v{max(numbers, default=0) + 1:04d}"

    def promote(self, tenant: str | None, version: str) -> Release:
        release = self.get(tenant, version)
        history = self._history(tenant)
        if history and history[-1] == version:
            return release
        self._write_history(tenant, [*history, version])
        return release

    def rollback(self, tenant: str | None) -> Release | None:
        """Serve the previously promoted version again (None: back to the base model)."""
        history = self._history(tenant)
        if not history:
            raise RegistryError("nothing to roll back: no adapter has been promoted")
        self._write_history(tenant, history[:-1])
        return self.current(tenant)

    def announcement(self, tenant: str | None) -> AdapterReleased | None:
        """The control event that tells workers what the scope serves now (None: the scope
        never had a release)."""
        releases = self.releases(tenant)
        current = self.current(tenant)
        made = current or (releases[-1] if releases else None)
        if made is None:
            return None
        return AdapterReleased(
            tenant=tenant,
            adapter_version=current.version if current else None,
            base_model=made.base_model,
            base_revision=made.base_revision,
            prompt_version=made.prompt_version,
            location=str(self.location(current).resolve()) if current else "",
            metrics=current.metrics if current else {},
        )

    def describe(self) -> str:
        """One line per release, `*` marking the version each scope serves."""
        found = sorted(self.root.glob("*/*/release.json")) if self.root.is_dir() else []
        lines = []
        for path in found:
            release = Release.model_validate_json(path.read_text())
            serving = self.current(release.tenant)
            mark = "*" if serving is not None and serving.version == release.version else " "
            metrics = " ".join(f"{k}={v:.3f}" for k, v in sorted(release.metrics.items()))
            lines.append(
                f"{mark} {release.tenant or '(global)'} {release.version} "
                f"{release.examples} examples {metrics}"
            )
        return "\n".join(lines) or "no adapters released"
