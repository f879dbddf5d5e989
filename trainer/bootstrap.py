"""Training examples from a catalog alone, before any merchant has decided anything.

A catalog's published titles are the copy its merchants once accepted. Each product becomes an
example whose input is what a raw import gives (its title degraded: lower case, the brand and
the attribute values taken out of it, a word or two dropped, the rest shuffled; no description)
and whose target is its real title, with its own description when that is finished and well
formed, else the description copyflow's template writes from its fields. A product whose own
title the judge finds broken (cut characters, loops, the wrong script, over the channel's
limit) or too short to learn from teaches nothing and is left out, with the reason counted.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from copyflow.plugins.candidates import clean_description, template_description
from copyflow.plugins.channels import get_channel
from copyflow.plugins.judge import Judge, ProductFacts
from copyflow.plugins.text import norm, product_type, squash, type_head, words
from copyflow.schemas import Product
from copyflow.trainer.examples import Example

# Findings on a product's own title that make it no target: what a merchant would not accept.
_TITLE_FAULTS = ("well_formed", "language", "not_degenerate", "length")
_DESCRIPTION_FAULTS = ("complete", "well_formed", "language", "not_degenerate", "length")
_DROP_SHARE = 0.2  # of the words left after the brand and attribute values are taken out


@dataclass
class Bootstrap:
    examples: list[Example] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)  # reason -> products
    own_descriptions: int = 0  # targets whose description is the product's own

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.excluded.most_common())
        return (
            f"{len(self.examples)} products used ({self.own_descriptions} with their own "
            f"description), {sum(self.excluded.values())} left out"
            + (f": {reasons}" if reasons else "")
        )


def degrade(product: Product, rng: random.Random) -> Product:
    """The product as a raw import gives it: its title in lower case without its brand or
    attribute values, a share of the other words dropped (never the product type's head
    noun), the rest shuffled; no description."""
    taken = {norm(w) for w in words(product.brand or "")}
    for value in product.attributes.values():
        taken |= {norm(w) for w in words(value)}
    found = product_type(product)
    keep = norm(type_head(found)) if found else ""
    rest = [w.lower() for w in product.title.split() if norm(w) not in taken and squash(w)]
    droppable = [i for i, w in enumerate(rest) if norm(w) != keep]
    for index in sorted(rng.sample(droppable, int(len(droppable) * _DROP_SHARE)), reverse=True):
        del rest[index]
    rng.shuffle(rest)
    title = " ".join(rest) or product.title.lower()
    return product.model_copy(update={"title": title, "description": ""})


def bootstrap_examples(
    products: Iterable[Product], tenant: str, channel: str = "default", seed: int = 0
) -> Bootstrap:
    """Examples from a catalog's products (see the module's docstring)."""
    rules = get_channel(channel)
    judge = Judge()
    result = Bootstrap()
    seen: set[str] = set()
    for product in products:
        facts = ProductFacts.of(product)
        title = " ".join(product.title.split())
        faults = [
            f.name for f in judge.title(facts, rules, title).faults if f.name in _TITLE_FAULTS
        ]
        if len(words(title)) < 2:
            faults.insert(0, "too short")
        if faults:
            result.excluded[f"title {faults[0].replace('_', ' ')}"] += 1
            continue
        content = product.content_hash()
        if content in seen:
            result.excluded["duplicate"] += 1
            continue
        seen.add(content)
        rng = random.Random(f"{seed}:{content}")  # the same product degrades the same way
        description = clean_description(product, rules.description_max)
        verdict = judge.description(facts, rules, description, title)
        own = bool(description) and not any(f.name in _DESCRIPTION_FAULTS for f in verdict.faults)
        if own:
            result.own_descriptions += 1
        else:
            description = template_description(product, title, rules.description_max)
        digest = hashlib.sha256(f"{tenant}\x1f{channel}\x1f{content}".encode()).hexdigest()
        result.examples.append(
            Example(
                example_id=f"bootstrap-{digest[:32]}",
                tenant=tenant,
                channel=channel,
                product=degrade(product, rng),
                title=title,
                description=description,
                action="accepted",
            )
        )
    return result
