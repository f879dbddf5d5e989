"""Each scope's title layouts, learned from its accepted and edited titles, and what the
workers were last told of them.

Learning is cheap (no model: the titles are only cut into parts and compared), so
`copyflow trainer` learns a scope's layouts again whenever new examples arrive, and announces
them when they changed; `copyflow layouts learn` does it by hand.

    <registry>/layouts/<scope>.json   the LayoutsReleased last announced for the scope
"""

from __future__ import annotations

from pathlib import Path

from copyflow.plugins.layouts import LearnedLayout, learn_layouts
from copyflow.schemas import LayoutsReleased
from copyflow.trainer.examples import GLOBAL, ExampleStore
from copyflow.trainer.registry import scope


def learn(
    store: ExampleStore, tenant: str | None, min_titles: int
) -> tuple[LayoutsReleased, list[LearnedLayout]]:
    """The scope's layouts from its stored examples (rejected ones aside), as the control
    event that would announce them, and what was learned per key."""
    examples = [e for e in store.load(tenant or GLOBAL) if e.trainable]
    layouts, report = learn_layouts(((e.product, e.title) for e in examples), min_titles)
    event = LayoutsReleased(
        tenant=tenant,
        version=layouts.version,
        layouts={key: list(order) for key, order in layouts.layouts.items()},
        titles=len(examples),
    )
    return event, report


class LayoutLedger:
    """The layouts last announced per scope, so that only a change is announced again."""

    def __init__(self, registry_root: Path) -> None:
        self.root = registry_root.expanduser() / "layouts"

    def _file(self, tenant: str | None) -> Path:
        return self.root / f"{scope(tenant)}.json"

    def last(self, tenant: str | None) -> LayoutsReleased | None:
        path = self._file(tenant)
        return LayoutsReleased.model_validate_json(path.read_text()) if path.is_file() else None

    def is_news(self, event: LayoutsReleased) -> bool:
        """Whether announcing event changes what the scope's workers use."""
        last = self.last(event.tenant)
        return bool(event.layouts) if last is None else last.version != event.version

    def record(self, event: LayoutsReleased) -> None:
        path = self._file(event.tenant)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(event.model_dump_json(indent=1))
        temporary.replace(path)


def describe(report: list[LearnedLayout]) -> str:
    """A table of what was learned per key: titles, order, and the composed titles' mean
    ROUGE-L against the accepted ones with the learned and with the default layout."""
    if not report:
        return "no category has enough accepted titles to learn a layout from"
    lines = [f"{'key':32} {'titles':>6} {'learned':>7} {'default':>7} kept  layout"]
    for row in report:
        lines.append(
            f"{row.key[:32]:32} {row.titles:6d} {row.learned_score:7.3f} "
            f"{row.default_score:7.3f} {'yes ' if row.kept else 'no  '}  {' '.join(row.layout)}"
        )
    return "\n".join(lines)
