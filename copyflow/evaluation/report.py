"""The evaluation report: a folder with report.md, PNG charts and metrics.json (every figure
the summary shows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from copyflow.evaluation import SYSTEMS

# (key, label, kind): kind "rate" prints as a percentage, "score" with three decimals.
# First the judge's figures, then overlap with the reference, then the older figures.
ROWS = (
    ("improved_title_rate", "titles improved (judge)", "rate"),
    ("type_kept_rate", "kept the product type", "rate"),
    ("new_words_rate", "titles with new content words", "rate"),
    ("dropped_numbers_rate", "titles that drop numbers", "rate"),
    ("incomplete_description_rate", "incomplete descriptions", "rate"),
    ("broken_characters_rate", "broken characters", "rate"),
    ("fallback_rate", "fallbacks (title not the model's)", "rate"),
    ("below_cleaned_rate", "titles scoring below the cleaned original", "rate"),
    ("rouge_l_title", "ROUGE-L title vs reference", "score"),
    ("rouge_l_description", "ROUGE-L description vs reference", "score"),
    ("mean_title_score", "mean judge score, title", "score"),
    ("mean_description_score", "mean judge score, description", "score"),
    ("empty_title_rate", "empty titles", "rate"),
    ("empty_description_rate", "empty descriptions", "rate"),
    ("length_compliance", "length compliance", "rate"),
    ("coverage", "key-attribute coverage", "rate"),
    ("coverage_brand", "  brand", "rate"),
    ("coverage_product_type", "  product type", "rate"),
    ("coverage_color", "  color", "rate"),
    ("coverage_gender", "  gender", "rate"),
    ("unsupported_rate_before_guard", "unsupported values, before the guard", "rate"),
    ("unsupported_rate", "unsupported values (final copy)", "rate"),
    ("repaired_rate", "repaired copy chosen", "rate"),
    ("parse_failure_rate", "answers that did not parse", "rate"),
    ("failed_generations", "failed generations", "count"),
    ("duplicate_title_rate", "duplicate titles", "rate"),
    ("distinct_1", "distinct-1", "score"),
    ("distinct_2", "distinct-2", "score"),
    ("bleu_title", "BLEU-4 title vs reference", "score"),
    ("bleu_description", "BLEU-4 description vs reference", "score"),
    ("mean_title_chars", "mean title length (chars)", "chars"),
)


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "rate":
        return f"{value:.1%}"
    if kind in ("chars", "count"):
        return f"{value:.0f}"
    return f"{value:.3f}"


def _md(text: object) -> str:
    """A table cell: no pipes or line breaks from product text."""
    return " ".join(str(text).replace("|", "\\|").split())


def systems_of(results: dict[str, Any]) -> list[str]:
    """The systems this run scored, in the tables' order."""
    return [name for name in SYSTEMS if name in results["systems"]]


def headline_table(results: dict[str, Any]) -> str:
    systems = results["systems"]
    names = systems_of(results)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label, kind in ROWS:
        values = [systems[name].get(key) for name in names]
        if all(v is None for v in values):
            continue
        cells = " | ".join(_cell(v, kind) for v in values)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def sources_table(results: dict[str, Any]) -> str:
    """The share of copyflow's suggestions by the candidate that won the title and the
    description ("" when copyflow was not run)."""
    sources = results.get("copyflow_sources")
    if not sources:
        return ""
    lines = ["| copyflow's copy from | title | description |", "|---|---|---|"]
    names = list(dict.fromkeys([*sources["title"], *sources["description"]]))
    for name in names:
        title, description = sources["title"].get(name), sources["description"].get(name)
        lines.append(
            f"| {name} | {_cell(title or 0.0, 'rate')} | {_cell(description or 0.0, 'rate')} |"
        )
    return "\n".join(lines)


def _charts(results: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = results["systems"]
    names = systems_of(results)
    keys = [
        ("improved_title_rate", "improved"),
        ("type_kept_rate", "type kept"),
        ("new_words_rate", "new words"),
        ("below_cleaned_rate", "< cleaned"),
        ("length_compliance", "length ok"),
        ("coverage", "coverage"),
        ("unsupported_rate", "unsupported"),
    ]
    figure, axis = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(names))
    for offset, name in enumerate(names):
        values = [systems[name].get(key) or 0.0 for key, _ in keys]
        positions = [i + (offset - (len(names) - 1) / 2) * width for i in range(len(keys))]
        axis.bar(positions, [v * 100 for v in values], width, label=name)
    axis.set_xticks(range(len(keys)), [label for _, label in keys])
    axis.set_ylabel("%  (coverage: of given attributes; others: of products)")
    axis.set_title(f"Copy quality, channel {results['channel']}, {results['products']} products")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "quality.png", dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(8, 4))
    for name in names:
        axis.hist(results["title_lengths"][name], bins=30, alpha=0.5, label=name)
    axis.axvline(results["limits"]["title_max"], color="red", linestyle="--", label="limit")
    axis.set_xlabel("title length (characters)")
    axis.set_ylabel("products")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "title_lengths.png", dpi=100)
    plt.close(figure)


def _examples(results: dict[str, Any]) -> str:
    names = systems_of(results)
    references = any(e.get("reference") for e in results["examples"])
    columns = ["product", *(["reference"] if references else []), *names]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for example in results["examples"]:
        cells = [_md(example["product_id"])]
        if references:
            cells.append(_md(example.get("reference") or ""))
        for name in names:
            text = _md(example.get(name) if example.get(name) is not None else "-")
            if name == "copyflow" and example.get("title_source"):
                text += f" ({example['title_source']})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(results: dict[str, Any], folder: Path, source: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _charts(results, folder)
    (folder / "metrics.json").write_text(json.dumps({**results, "input": str(source)}, indent=2))
    timings = ", ".join(f"{k} {v:.0f} s" for k, v in results["timings"].items()) or "none"
    if results["model"] is None:
        model = "no model (no generating system run)"
    else:
        model = (
            f"model `{results['model']}` (revision {results['model_revision']}), prompt "
            f"`{results['prompt_version']}`"
        )
    sources = sources_table(results)
    learned = results.get("layouts")
    layouts = (
        f" Composed titles follow {learned['keys']} title layouts (version {learned['version']}) "
        f"learned from {learned['titles']} accepted titles of `{learned['source']}`."
        if learned
        else ""
    )
    summary = f"""# copyflow evaluation: channel `{results["channel"]}`

{results["products"]} products from `{source}`{" (messy titles)" if results.get("messy") else ""};
{model}; channel limits: title {results["limits"]["title_max"]}, description
{results["limits"]["description_max"]} characters. Generation time: {timings}.{layouts}

{headline_table(results)}

- **original** is the merchant's own text; **naive** is one plain prompt, its raw answer, no
  checks; **copyflow** is what the worker publishes (the judge's pick among the model's copy,
  its repair and candidates built from the product's fields); **composed** is no model: the
  cleaned title with the missing key attributes put in, and a template description.
- The first rows are the judge's (the one that picks copyflow's copy): a title is improved
  when it changed and scores above the original by more than 0.001 (copyflow: the
  suggestion's own `improved`, and the title changed); new content words are words no field
  of the product gives; numbers are those of the original title; an incomplete description
  ends mid-sentence (an empty one is counted apart); fallbacks are copyflow titles not from
  the model; "below the cleaned original" compares with the merchant's title tidied.
- Coverage: the share of given key attributes (brand, product type, color, gender) that the
  title or description mentions. Unsupported values: products whose copy holds a number, unit,
  color, material, size or known brand that the product's fields do not give, as the guard's
  own detector finds them ("before the guard" is the model's raw answer).
- ROUGE-L and BLEU-4 compare with the data's reference text (over characters for CJK text):
  for the catalog files that is the merchant's original itself unless the input is pairs or
  `--messy`, so they measure closeness to it, not quality.
{f"{chr(10)}{sources}{chr(10)}" if sources else ""}
![quality](quality.png)

![title lengths](title_lengths.png)

## First products

{_examples(results)}
"""
    (folder / "report.md").write_text(summary)
    return folder / "report.md"
