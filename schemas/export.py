"""JSON Schema export of the contracts, for producers and consumers in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from copyflow.schemas.events import CONTRACTS


def export_json_schemas(directory: Path) -> list[Path]:
    """Write one ``<contract>.schema.json`` per contract into directory; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in CONTRACTS.items():
        schema = model.model_json_schema(
            mode="serialization" if name == "suggestion" else "validation"
        )
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
