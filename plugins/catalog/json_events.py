"""The built-in adapter: ProductEvent as JSON (UTF-8), exactly as the exported JSON Schema says."""

from __future__ import annotations

import json

from pydantic import ValidationError

from plugins.catalog.base import InvalidEvent
from schemas import ProductEvent, Suggestion


class JsonCatalogAdapter:
    def decode(self, raw: bytes) -> ProductEvent:
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidEvent("decode", f"not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise InvalidEvent("decode", f"expected a JSON object, got {type(document).__name__}")
        try:
            return ProductEvent.model_validate(document)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<event>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidEvent("schema", problems) from None

    def encode(self, suggestion: Suggestion) -> bytes:
        return suggestion.model_dump_json().encode()
