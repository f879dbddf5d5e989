"""Shared pieces of the benchmarks: real products from ../shared/data and result printing."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

from copyflow.schemas import Product

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("COPYFLOW_BENCH_DATA", REPO.parent / "shared" / "data"))


def myntra_products(limit: int, data_dir: Path = SHARED_DATA) -> list[Product]:
    """Products from the Myntra catalog (read in place, never copied into the repository)."""
    path = data_dir / "myntra.jsonl"
    if not path.is_file():
        sys.exit(f"benchmark data not found: {path} (set COPYFLOW_BENCH_DATA to its folder)")
    products = []
    with path.open() as handle:
        for line in handle:
            row = json.loads(line)
            products.append(
                Product(
                    product_id=str(row["id"]),
                    title=row["title"],
                    brand=row.get("brand") or None,
                    description=(row.get("description") or "")[:300],
                    attributes={"gender": row.get("gender") or "unisex"},
                )
            )
            if len(products) == limit:
                break
    return products


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def report(figures: dict[str, Any], output: Path | None) -> None:
    """Write the figures as JSON (if asked) and print them as the last line."""
    line = json.dumps(figures, sort_keys=True)
    if output is not None:
        output.write_text(line + "\n")
    print(line)
