"""The evaluation report: a folder with report.md, PNG charts and metrics.json (every figure
the summary shows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SYSTEMS = ("original", "naive", "copyflow")

# (key, label, kind): kind "rate" prints as a percentage, "score" with two decimals.
ROWS = (
    ("length_compliance", "length compliance", "rate"),
    ("coverage", "key-attribute coverage", "rate"),
    ("coverage_brand", "  brand", "rate"),
    ("coverage_product_type", "  product type", "rate"),
    ("coverage_color", "  color", "rate"),
    ("coverage_gender", "  gender", "rate"),
    ("unsupported_rate_before_guard", "unsupported values, before the guard", "rate"),
    ("unsupported_rate", "unsupported values (final copy)", "rate"),
    ("fallback_rate", "fallback (template) rate", "rate"),
    ("repaired_rate", "repaired rate", "rate"),
    ("parse_failure_rate", "answers that did not parse", "rate"),
    ("duplicate_title_rate", "duplicate titles", "rate"),
    ("distinct_1", "distinct-1", "score"),
    ("distinct_2", "distinct-2", "score"),
    ("rouge_l_title", "ROUGE-L title vs reference", "score"),
    ("bleu_title", "BLEU-4 title vs reference", "score"),
    ("rouge_l_description", "ROUGE-L description vs reference", "score"),
    ("bleu_description", "BLEU-4 description vs reference", "score"),
    ("mean_title_chars", "mean title length (chars)", "chars"),
)


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "rate":
        return f"{value:.1%}"
    if kind == "chars":
        return f"{value:.0f}"
    return f"{value:.3f}"


def _md(text: object) -> str:
    """A table cell: no pipes or line breaks from product text."""
    return " ".join(str(text).replace("|", "\\|").split())


def headline_table(results: dict[str, Any]) -> str:
    systems = results["systems"]
    lines = ["| metric | " + " | ".join(SYSTEMS) + " |", "|---|" + "---|" * len(SYSTEMS)]
    for key, label, kind in ROWS:
        values = [systems[name].get(key) for name in SYSTEMS]
        if all(v is None for v in values):
            continue
        cells = " | ".join(_cell(v, kind) for v in values)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def _charts(results: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = results["systems"]
    keys = [
        ("length_compliance", "length ok"),
        ("coverage", "coverage"),
        ("unsupported_rate", "unsupported"),
        ("duplicate_title_rate", "dup. titles"),
    ]
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.25
    for offset, name in enumerate(SYSTEMS):
        values = [systems[name].get(key) or 0.0 for key, _ in keys]
        positions = [i + (offset - 1) * width for i in range(len(keys))]
        axis.bar(positions, [v * 100 for v in values], width, label=name)
    axis.set_xticks(range(len(keys)), [label for _, label in keys])
    axis.set_ylabel("%  (coverage: of given attributes; others: of products)")
    axis.set_title(f"Copy quality, channel {results['channel']}, {results['products']} products")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "quality.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(8, 4))
    for name in SYSTEMS:
        axis.hist(results["title_lengths"][name], bins=30, alpha=0.5, label=name)
    axis.axvline(results["limits"]["title_max"], color="red", linestyle="--", label="limit")
    axis.set_xlabel("title length (characters)")
    axis.set_ylabel("products")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "title_lengths.png", dpi=100)
    plt.close(figure)


def write_report(results: dict[str, Any], folder: Path, source: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _charts(results, folder)
    (folder / "metrics.json").write_text(json.dumps({**results, "input": str(source)}, indent=2))
    examples = "\n".join(
        f"| {_md(e['product_id'])} | {_md(e['original'])} | {_md(e['naive'])} | "
        f"{_md(e['copyflow'])}{' (fallback)' if e['fallback'] else ''} |"
        for e in results["examples"]
    )
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in results["timings"].items())
    summary = f"""# copyflow evaluation: channel `{results["channel"]}`

{results["products"]} products from `{source}`; model `{results["model"]}` (revision
{results["model_revision"]}), prompt `{results["prompt_version"]}`; channel limits: title
{results["limits"]["title_max"]}, description {results["limits"]["description_max"]} characters.
Generation time: {timings}.

{headline_table(results)}

- **original** is the merchant's own text; **naive** is one plain prompt with no checks;
  **copyflow** is what the worker publishes (checks, one repair, fallback, channel fit).
- Coverage: the share of given key attributes (brand, product type, color, gender) that the
  title or description mentions. Unsupported values: products whose copy holds a number, unit,
  color, material, size or known brand that the product's fields do not give, as the guard's
  own detector finds them (so "after the guard" is low by construction; "before" is the
  model's raw answer).
- ROUGE-L and BLEU-4 compare with the data's own title or description, which is also the
  merchant's original: they measure closeness to it, not quality.

![quality](quality.png)

![title lengths](title_lengths.png)

## First products

| product | original | naive | copyflow |
|---|---|---|---|
{examples}
"""
    (folder / "report.md").write_text(summary)
    return folder / "report.md"
