"""Evaluation inputs: the shared catalog files and the project's own JSONL, as Products with
what each file says about them (reference text, key attributes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from schemas import Product, ProductEvent


class DataError(ValueError):
    pass


@dataclass(frozen=True)
class Item:
    product: Product
    reference_title: str | None = None
    reference_description: str | None = None
    # Attributes the copy should mention when the data gives them: brand, product type,
    # color, gender.
    key_attributes: dict[str, str] = field(default_factory=dict)


def _fashion(row: dict[str, str]) -> Item:
    """fashion_styles.jsonl: attributes are catalog fields; the title also holds the brand."""
    attributes = {k: row[k] for k in ("gender", "color", "season", "usage") if row.get(k)}
    product = Product(
        product_id=row["id"],
        title=row["title"],
        category=[row[k] for k in ("master_category", "sub_category") if row.get(k)],
        attributes=attributes,
    )
    keys = {k: row[k] for k in ("gender", "color") if row.get(k)}
    # The article as the merchant names it ("Track Pants", "T-shirt"): the title's last word.
    keys["product_type"] = row["title"].split()[-1]
    return Item(product, reference_title=row["title"], key_attributes=keys)


def _myntra(row: dict[str, str]) -> Item:
    """myntra.jsonl: its color was derived from the title upstream and is sometimes wrong, so
    it is neither given to the model nor scored."""
    attributes = {"gender": row["gender"]} if row.get("gender") else {}
    product = Product(
        product_id=row["id"],
        title=row["title"],
        brand=row.get("brand") or None,
        description=row.get("description") or "",
        attributes=attributes,
    )
    keys = {k: row[k] for k in ("brand", "gender") if row.get(k)}
    return Item(
        product,
        reference_title=row["title"],
        reference_description=row.get("description") or None,
        key_attributes=keys,
    )


def _ours(row: dict[str, object]) -> Item:
    product = (
        ProductEvent.model_validate(row).data if "data" in row else Product.model_validate(row)
    )
    keys = {"brand": product.brand} if product.brand else {}
    for name in ("color", "gender"):
        if name in product.attributes:
            keys[name] = product.attributes[name]
    return Item(product, key_attributes=keys)


def item_from_row(row: dict[str, object]) -> Item:
    """An Item from a row of any known format (KeyError, ValueError when it is not one)."""
    if "master_category" in row:
        return _fashion(row)  # type: ignore[arg-type]
    if row.get("source") == "myntra_products_catalog" or "price_inr" in row:
        return _myntra(row)  # type: ignore[arg-type]
    return _ours(row)


def load_items(path: Path, limit: int | None = None) -> Iterator[Item]:
    """Items from a JSONL file in any of the known formats; a bad line is an error naming it."""
    count = 0
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                yield item_from_row(row)
            except (ValueError, KeyError, ValidationError) as exc:
                raise DataError(f"{path}:{number}: {type(exc).__name__}: {exc}") from None
            count += 1
            if limit is not None and count >= limit:
                return
