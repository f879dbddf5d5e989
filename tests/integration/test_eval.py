"""`copyflow eval` end to end on the example catalog, with the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consumer.pipeline import Pipeline
from plugins.catalog import JsonCatalogAdapter
from schemas import ProductEvent

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_eval(tiny_model_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYFLOW_")}
    env.update(
        COPYFLOW_MODEL__NAME=str(tiny_model_dir),
        COPYFLOW_MODEL__MAX_NEW_TOKENS="12",
        COPYFLOW_POOL__DEVICES="cpu",
        PYTHONPATH=str(REPO),
    )
    return subprocess.run(
        [sys.executable, "-m", "copyflow", "eval", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_eval_writes_a_report_comparing_three_systems(tiny_model_dir: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.jsonl"
    pipeline = Pipeline(JsonCatalogAdapter(), 1 << 20)
    lines = (REPO / "examples" / "catalog.jsonl").read_bytes().splitlines()
    rows = [line.decode() for line in lines if isinstance(pipeline.decode(line), ProductEvent)]
    catalog.write_text("\n".join(rows[:12]) + "\n")

    report = tmp_path / "report"
    done = run_eval(
        tiny_model_dir, "--input", str(catalog), "--channel", "shopify_seo", "--report", str(report)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["products"] == 12 and metrics["channel"] == "shopify_seo"
    assert set(metrics["systems"]) == {"original", "naive", "copyflow"}
    ours = metrics["systems"]["copyflow"]
    assert ours["length_compliance"] == 1.0
    assert ours["unsupported_rate"] == 0.0
    assert 0.0 <= ours["fallback_rate"] <= 1.0 and "unsupported_rate_before_guard" in ours
    for chart in ("quality.png", "title_lengths.png"):
        assert (report / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (report / "report.md").read_text()
    assert "| length compliance |" in summary and "![quality](quality.png)" in summary
    assert "| length compliance |" in done.stdout  # the headline table is printed too


def test_eval_rejects_an_unknown_channel_and_a_missing_file(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    done = run_eval(
        tiny_model_dir, "--input", "nope.jsonl", "--channel", "etsy", "--report", str(tmp_path)
    )
    assert done.returncode == 2 and "unknown channel 'etsy'" in done.stderr
    done = run_eval(
        tiny_model_dir, "--input", str(tmp_path / "nope.jsonl"), "--report", str(tmp_path)
    )
    assert done.returncode == 2 and "no such file" in done.stderr
