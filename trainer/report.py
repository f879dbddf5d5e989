"""The training report: report.md, loss.png and metrics.json in one folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt


def write_report(
    folder: Path, metrics: dict[str, Any], losses: list[float], holdout: list[float]
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(range(1, len(losses) + 1), losses, label="training loss (per step)")
    if holdout:
        steps_per_epoch = len(losses) / len(holdout)
        marks = [round(steps_per_epoch * (i + 1)) for i in range(len(holdout))]
        axis.plot(marks, holdout, "o-", label="held-out loss (per epoch)")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss")
    axis.legend()
    figure.tight_layout()
    figure.savefig(folder / "loss.png", dpi=100)
    plt.close(figure)
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    current, candidate = metrics["current"], metrics["candidate"]
    rows = "\n".join(
        f"| {name} | {current[name]:.3f} | {candidate[name]:.3f} |" for name in sorted(candidate)
    )
    m = metrics
    gate = f"released as {m['version']}" if m["released"] else "refused"
    text = f"""# Training report: {metrics["scope"]}

{metrics["train_examples"]} training and {metrics["holdout_examples"]} held-out examples,
{m["epochs"]} epochs on {m["device"]} ({m["dtype"]}) in {m["seconds"]:.0f} s,
peak memory {metrics["peak_rss_mb"]:.0f} MB. Data fingerprint `{metrics["data_fingerprint"]}`.
{f"{chr(10)}Bootstrapped from a catalog: {m['bootstrap']}.{chr(10)}" if "bootstrap" in m else ""}
| held-out | current ({metrics["current_name"]}) | candidate |
| --- | --- | --- |
{rows}

Gate: **{gate}**: {m["verdict"]}

![loss](loss.png)
"""
    (folder / "report.md").write_text(text)
    return [folder / "report.md", folder / "loss.png", folder / "metrics.json"]
