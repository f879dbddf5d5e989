"""`copyflow demo` end to end (its own bundled broker), with the tiny model for speed;
`make demo` runs the same command with the real default model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from copyflow.schemas import Suggestion

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("run", ["first", "second"])
def test_demo_prints_every_suggestion_and_dead_letter(
    tiny_model_dir: Path, redis_url: str, tmp_path: Path, run: str
) -> None:
    """Run twice against one Redis: a second demo must not be skipped as unchanged."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYFLOW_")}
    env.update(
        COPYFLOW_MODEL__NAME=str(tiny_model_dir),
        COPYFLOW_MODEL__MAX_NEW_TOKENS="8",
        COPYFLOW_REDIS__URL=redis_url,
        PYTHONPATH=str(REPO),
    )
    output = tmp_path / "suggestions.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "copyflow", "demo", "--timeout", "300", "--output", str(output)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "30/30 suggestions, 0/0 deletions, 4/4 dead letters" in done.stdout
    assert "dead letters (4):" in done.stdout
    assert "data.title: Field required" in done.stdout
    suggestions = [Suggestion.model_validate_json(line) for line in output.read_text().splitlines()]
    assert len({s.product_id for s in suggestions}) == 30
    for s in suggestions:  # every product appears in the table with its original title
        assert s.product_id in done.stdout
    # The table says, for each product, whether it improved and which candidate won.
    assert "improved  title from" in done.stdout
    lipstick = next(line for line in done.stdout.splitlines() if line.startswith("bt-5002"))
    assert "Lipstick" in lipstick and " yes " in lipstick


def test_demo_feeds_a_catalog_in_another_format(
    tiny_model_dir: Path, redis_url: str, tmp_path: Path
) -> None:
    """The Debezium example (creates, a price-only update, a left-out column filled in, a
    deletion and its tombstone, malformed records) through the demo's worker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYFLOW_")}
    env.update(
        COPYFLOW_MODEL__NAME=str(tiny_model_dir),
        COPYFLOW_MODEL__MAX_NEW_TOKENS="8",
        COPYFLOW_REDIS__URL=redis_url,
        PYTHONPATH=str(REPO),
    )
    catalog = REPO / "examples" / "formats" / "debezium.records.jsonl"
    command = ["demo", "--format", "debezium", "--catalog", str(catalog), "--timeout", "300"]
    done = subprocess.run(
        [sys.executable, "-m", "copyflow", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "debezium records from" in done.stdout
    assert "deleted (tombstones on the suggestions topic): " in done.stdout
    assert "INCOMPLETE" not in done.stderr
