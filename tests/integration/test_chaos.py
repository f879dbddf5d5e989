"""A small version of each chaos scenario (`make chaos` runs them at full size): no event is
lost and no worker crashes. Timings are reported by `make chaos`, never asserted here."""

from __future__ import annotations

import pytest

from tests.chaos.scenarios import SCENARIOS, SMALL

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_no_event_is_lost_and_no_worker_crashes(name: str) -> None:
    verdict = SCENARIOS[name](SMALL)
    assert verdict.lost == 0, verdict
    assert verdict.crashes == 0, "\n".join(verdict.crash_logs)
    assert verdict.suggestions + verdict.dead_letters >= verdict.events, verdict
    if name == "malformed":
        assert verdict.dead_letters == SMALL.malformed, verdict
    if name == "sigkill-loop":
        assert len(verdict.restart_s) == SMALL.kills, verdict
