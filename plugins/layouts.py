"""Title layouts learned from a tenant's accepted titles.

Merchants who accept or edit suggestions show how their catalog lays a title out: "Brand
Gender Color Name Type" in one shop, "Brand Name Type, Color" in another, and often one way
for shirts and another for watches. learn_layouts reads the accepted titles, finds in each
the parts candidates.title_parts finds in a product's own title, and keeps per category the
order most titles agree on (per product type where products carry no category, and one for
the whole tenant). A learned order is kept only where it brings the composed titles closer to
the accepted ones than the default layout does: layouts cannot make copy worse than having
none. The composed title candidate then uses the tenant's order for the product's category.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from copyflow.plugins.candidates import DEFAULT_LAYOUT, SLOTS, compose_title, title_parts
from copyflow.plugins.similarity import rouge_l
from copyflow.plugins.text import CJK, is_cjk_locale, norm, product_type, type_head
from copyflow.schemas import Product, TitleSlot

WHOLE_TENANT = "*"  # the key of the layout learned from all of a tenant's titles
# A learned layout must bring composed titles this much closer (mean ROUGE-L F1) to the
# accepted ones than the default layout to be kept.
_MIN_GAIN = 0.005
_NO_LIMIT = 10_000


def layout_keys(product: Product) -> list[str]:
    """The keys a product's layout is looked up by, most specific first: its category leaf,
    else its product type's head noun ("Running Shoe" -> shoe), then the whole tenant's."""
    keys: list[str] = []
    if product.category:
        keys.append(f"category:{norm(product.category[-1])}")
    else:
        found = product_type(product)
        if found:
            keys.append(f"type:{norm(type_head(found))}")
    keys.append(WHOLE_TENANT)
    return keys


@dataclass(frozen=True)
class TitleLayouts:
    """One tenant's (or every tenant's) learned layouts, by layout_keys key."""

    layouts: Mapping[str, tuple[TitleSlot, ...]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """Names the layouts: part of the identity of the copy made with them."""
        text = json.dumps({k: list(v) for k, v in sorted(self.layouts.items())})
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def for_product(self, product: Product) -> tuple[TitleSlot, ...] | None:
        for key in layout_keys(product):
            if key in self.layouts:
                return self.layouts[key]
        return None

    def __bool__(self) -> bool:
        return bool(self.layouts)


def observed_order(product: Product, title: str) -> tuple[TitleSlot, ...]:
    """The slots an accepted title holds, in its order (() for CJK titles, which are
    composed in place)."""
    if is_cjk_locale(product.locale) or CJK.search(title):
        return ()
    return title_parts(product, " ".join(title.split())).order()


def consensus(orders: Sequence[Sequence[TitleSlot]]) -> tuple[TitleSlot, ...]:
    """The order of SLOTS the observed orders agree on, by ranked pairs: each "a before b"
    that more titles hold than "b before a" is fixed, the widest majorities first, unless it
    contradicts those fixed already. Slots no title holds keep their default place after the
    default slot before them; ties keep the default order."""
    before: Counter[tuple[TitleSlot, TitleSlot]] = Counter()
    seen: set[TitleSlot] = set()
    for order in orders:
        seen.update(order)
        for a, b in combinations(order, 2):
            before[(a, b)] += 1
    majorities = sorted(
        ((before[(a, b)] - before[(b, a)], a, b) for a in seen for b in seen),
        key=lambda m: (-m[0], SLOTS.index(m[1]), SLOTS.index(m[2])),
    )
    # slot -> the slots fixed to come after it
    after: dict[TitleSlot, set[TitleSlot]] = {slot: set() for slot in seen}
    for margin, a, b in majorities:
        if margin > 0 and a not in _reachable(after, b):
            after[a].add(b)
    layout: list[TitleSlot] = []
    waiting = set(seen)
    while waiting:
        free = [s for s in waiting if not any(s in after[o] for o in waiting)]
        slot = min(free, key=SLOTS.index)
        layout.append(slot)
        waiting.discard(slot)
    for slot in SLOTS:
        if slot in layout:
            continue
        earlier = [s for s in DEFAULT_LAYOUT[: DEFAULT_LAYOUT.index(slot)] if s in layout]
        layout.insert(layout.index(earlier[-1]) + 1 if earlier else 0, slot)
    return tuple(layout)


def _reachable(after: Mapping[TitleSlot, set[TitleSlot]], start: TitleSlot) -> set[TitleSlot]:
    found: set[TitleSlot] = set()
    stack = [start]
    while stack:
        for slot in after[stack.pop()] - found:
            found.add(slot)
            stack.append(slot)
    return found | {start}


@dataclass(frozen=True)
class LearnedLayout:
    """What was learned for one key, and whether it was kept."""

    key: str
    layout: tuple[TitleSlot, ...]
    titles: int
    learned_score: float  # mean ROUGE-L F1 of the composed titles against the accepted ones
    default_score: float
    kept: bool


def learn_layouts(
    accepted: Iterable[tuple[Product, str]], min_titles: int = 5
) -> tuple[TitleLayouts, list[LearnedLayout]]:
    """Layouts from (product, title a merchant accepted for it) pairs: per key with at least
    min_titles titles, kept where they beat the default layout on those titles."""
    by_key: dict[str, list[tuple[Product, str, tuple[TitleSlot, ...]]]] = defaultdict(list)
    for product, title in accepted:
        order = observed_order(product, title)
        if len(order) < 2:
            continue  # one part or none: says nothing about an order
        for key in layout_keys(product):
            by_key[key].append((product, title, order))
    chosen: dict[str, tuple[TitleSlot, ...]] = {}
    report: list[LearnedLayout] = []
    for key, rows in sorted(by_key.items()):
        if len(rows) < min_titles:
            continue
        layout = consensus([order for _, _, order in rows])
        learned = _mean_rouge(rows, layout)
        default = _mean_rouge(rows, DEFAULT_LAYOUT)
        keep = layout != DEFAULT_LAYOUT and learned >= default + _MIN_GAIN
        report.append(LearnedLayout(key, layout, len(rows), learned, default, keep))
        chosen[key] = layout if keep else DEFAULT_LAYOUT
    # A category where the default layout won keeps it, rather than falling back to the
    # whole tenant's learned one; the default needs no entry where nothing else would apply.
    fallback = chosen.get(WHOLE_TENANT, DEFAULT_LAYOUT)
    layouts = {
        key: layout
        for key, layout in chosen.items()
        if layout != (DEFAULT_LAYOUT if key == WHOLE_TENANT else fallback)
    }
    return TitleLayouts(layouts), report


def _mean_rouge(
    rows: Sequence[tuple[Product, str, tuple[TitleSlot, ...]]], layout: Sequence[TitleSlot]
) -> float:
    scores = [rouge_l(compose_title(p, _NO_LIMIT, layout), title) for p, title, _ in rows]
    return sum(scores) / len(scores)
