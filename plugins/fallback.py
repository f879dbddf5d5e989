"""The deterministic template copy used when generated copy cannot be trusted."""

from __future__ import annotations

from schemas import Product


def template_copy(product: Product) -> tuple[str, str]:
    """A title and description built only from the product's own fields."""
    title = " ".join(product.title.split())
    if product.brand and product.brand.lower() not in title.lower():
        title = f"{product.brand} {title}"
    description = " ".join(product.description.split())
    if not description:
        facts = [f"{name}: {value}" for name, value in sorted(product.attributes.items())]
        description = title + (". " + "; ".join(facts) + "." if facts else ".")
    return title, description
