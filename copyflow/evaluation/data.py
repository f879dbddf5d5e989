"""Evaluation inputs: the shared catalog files and the project's own JSONL, as Products with
what each file says about them (reference text, key attributes).

Formats, one JSON object a line (item_from_row tells them apart):

- fashion_styles (``master_category`` present): the catalog attributes and the real title;
  the reference title is the real title. With ``messy_titles=True`` (``copyflow eval
  --messy``) the product's title is instead a messy one made from the real title, as a raw
  catalog import gives it (see messy; bench/style.py builds its inputs the same way), and the
  reference stays the real title: how close each system comes to the merchant's own title.
- myntra (``source`` "myntra_products_catalog" or ``price_inr`` present): title, brand,
  gender and description; the references are the title and description.
- pairs (``product`` holds an object): a catalog's own before/after pair::

      {"product": {...a Product or a ProductEvent...},
       "reference_title": "the title the catalog published",
       "reference_description": "its description"}

  ``reference_description`` is optional. The product is the input (the "before"); the
  references are what the catalog made of it (the "after"), scored with ROUGE-L and BLEU.
- the project's own: a ProductEvent (``data`` present) or a bare Product; no reference text.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from copyflow.schemas import Product, ProductEvent


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


# The seed bench/style.py draws its messy titles with: the same rows, the same titles.
MESSY_SEED = 7


def messy(row: Mapping[str, str], rng: random.Random) -> str:
    """The kind of raw title a catalog import gives: no gender or color, words in any order."""
    drop = {w.lower() for field in ("gender", "color") for w in row.get(field, "").split()}
    words = [w.lower() for w in row["title"].split() if w.lower() not in drop]
    rng.shuffle(words)
    return " ".join(words) or row["title"].lower()


def is_fashion_row(row: Mapping[str, object]) -> bool:
    return "master_category" in row


def _fashion(row: dict[str, str], rng: random.Random | None = None) -> Item:
    """fashion_styles.jsonl: attributes are catalog fields; the title also holds the brand.
    With rng, the product's title is messy(row, rng) and the real title only the reference."""
    attributes = {k: row[k] for k in ("gender", "color", "season", "usage") if row.get(k)}
    product = Product(
        product_id=row["id"],
        title=row["title"] if rng is None else messy(row, rng),
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


def _product(row: Mapping[str, object]) -> Product:
    """A bare Product, or the product of a ProductEvent."""
    if "data" in row:
        return ProductEvent.model_validate(row).data
    return Product.model_validate(row)


def _keys(product: Product) -> dict[str, str]:
    keys = {"brand": product.brand} if product.brand else {}
    for name in ("color", "gender"):
        if name in product.attributes:
            keys[name] = product.attributes[name]
    return keys


def _ours(row: dict[str, object]) -> Item:
    product = _product(row)
    return Item(product, key_attributes=_keys(product))


def _reference(row: Mapping[str, object], name: str, required: bool) -> str | None:
    value = row.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError(f"{name}: a non-empty string is required")
    return value if value.strip() else None


def _pair(row: dict[str, object]) -> Item:
    """A catalog's before/after pair: the product as input, its published text as reference."""
    product_row = row["product"]
    if not isinstance(product_row, dict):
        raise ValueError("product: not a JSON object")
    unknown = set(row) - {"product", "reference_title", "reference_description"}
    if unknown:
        raise ValueError(f"unknown fields in a pair: {', '.join(sorted(unknown))}")
    product = _product(product_row)
    return Item(
        product,
        reference_title=_reference(row, "reference_title", required=True),
        reference_description=_reference(row, "reference_description", required=False),
        key_attributes=_keys(product),
    )


def item_from_row(row: dict[str, object], rng: random.Random | None = None) -> Item:
    """An Item from a row of any known format (KeyError, ValueError when it is not one).
    rng: fashion_styles rows get a messy title drawn with it (see the module docstring)."""
    if isinstance(row.get("product"), dict):
        return _pair(row)
    if is_fashion_row(row):
        return _fashion(row, rng)  # type: ignore[arg-type]
    if row.get("source") == "myntra_products_catalog" or "price_inr" in row:
        return _myntra(row)  # type: ignore[arg-type]
    return _ours(row)


def load_items(path: Path, limit: int | None = None, messy_titles: bool = False) -> Iterator[Item]:
    """Items from a JSONL file in any of the known formats; a bad line is an error naming it.
    messy_titles: fashion_styles rows get a messy title (random.Random(MESSY_SEED), drawn in file
    order as bench/style.py draws them); then every row must be a fashion_styles row."""
    count = 0
    rng = random.Random(MESSY_SEED) if messy_titles else None
    with path.open() as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                if messy_titles and not is_fashion_row(row):
                    raise ValueError("messy titles are made from fashion_styles rows only")
                yield item_from_row(row, rng)
            except (ValueError, KeyError, ValidationError) as exc:
                raise DataError(f"{path}:{number}: {type(exc).__name__}: {exc}") from None
            count += 1
            if limit is not None and count >= limit:
                return
