"""Stuck deals: open deals that stayed in their stage beyond the stage's limit.

A deal is stuck once a clock (the manager's deals stream, or the wall clock for
a caught-up partition) passes its entry into the stage plus the stage's
``stuck_after_days``; it stops being stuck when it moves or closes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from metrics.exposition import StateExposition
from salespulse.settings import Pipeline, Regulation
from tests.support.harness import NOW, Harness, deal_created, stage_changed
from tests.support.scrape import parse, total

T0 = NOW - timedelta(days=10)
DAY = timedelta(days=1)
LIMITED = Pipeline(
    regulations={"proposal": Regulation(task_type="proposal", within_hours=24)},
    stuck_after_days={"lead": 2, "demo": 5},
)


def harness() -> Harness:
    return Harness(pipelines={"default": LIMITED})


def stuck(h: Harness, **labels: str) -> float:
    samples = parse(StateExposition(h.settings).text(h.store.records(), NOW))
    return total(samples, "salespulse_stuck_deals", manager="m-a", **labels)


def test_a_deal_is_stuck_by_the_sweep_after_its_stage_limit_and_not_before() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0))  # lead, at most 2 days
    h.tick(T0 + 2 * DAY - timedelta(minutes=1))  # the deal's age moves on, nothing stuck
    assert stuck(h) == 0
    assert h.tick(T0 + 2 * DAY + timedelta(minutes=1)) == 1
    assert stuck(h, pipeline="default", stage="lead") == 1
    assert h.tick(T0 + 2 * DAY + timedelta(hours=2)) == 0  # once
    assert stuck(h) == 1


def test_a_stage_without_a_limit_never_holds_stuck_deals() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0), stage_changed("m-a", "D1", "contacted", T0 + DAY))
    h.tick(T0 + 9 * DAY)
    assert stuck(h) == 0
    exposed = StateExposition(h.settings).text(h.store.records(), NOW)
    assert "salespulse_stuck_deals{" not in exposed  # no series while none is stuck


def test_moving_on_clears_it_and_the_next_stage_has_its_own_limit() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0))
    h.tick(T0 + 3 * DAY)
    assert stuck(h, stage="lead") == 1
    h.send(stage_changed("m-a", "D1", "demo", T0 + 4 * DAY))
    assert stuck(h) == 0
    h.tick(T0 + 8 * DAY)  # 4 of the demo's 5 days
    assert stuck(h, stage="demo") == 0
    assert h.tick(T0 + 9 * DAY + timedelta(minutes=1)) == 1
    assert stuck(h, stage="demo") == 1
    assert stuck(h, stage="lead") == 0


@pytest.mark.parametrize("closing", ["won", "lost"])
def test_closing_clears_it(closing: str) -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0), deal_created("m-a", "D2", T0))
    h.tick(T0 + 3 * DAY)
    assert stuck(h) == 2
    h.send(stage_changed("m-a", "D1", closing, T0 + 4 * DAY))
    assert stuck(h, stage="lead") == 1


def test_the_deals_stream_passing_the_limit_counts_it_too() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0), deal_created("m-a", "D2", T0 + 3 * DAY))
    assert stuck(h, stage="lead") == 1  # D1, noticed by D2's event time


def test_a_deal_entering_a_stage_after_its_limit_has_passed_is_stuck_at_once() -> None:
    h = harness()
    h.send(deal_created("m-a", "D2", T0 + 5 * DAY), deal_created("m-a", "D1", T0))
    assert stuck(h, stage="lead") == 1  # D1 (its stay so far is 5 days of the deals stream)


def test_a_restart_keeps_it_and_the_wait_of_the_others() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0), deal_created("m-a", "D2", T0 + DAY))
    h.tick(T0 + 2 * DAY + timedelta(hours=1))
    h.persist()
    h.restart()
    assert stuck(h, stage="lead") == 1
    assert h.tick(T0 + 3 * DAY + timedelta(hours=1)) == 1  # D2's limit, found again
    assert stuck(h, stage="lead") == 2
    h.send(stage_changed("m-a", "D1", "contacted", T0 + 4 * DAY))
    assert stuck(h, stage="lead") == 1


def test_a_limit_on_a_won_or_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="stuck_after_days"):
        Pipeline(stuck_after_days={"won": 3})
    with pytest.raises(ValueError, match="stuck_after_days"):
        Pipeline(stuck_after_days={"nowhere": 3})
    with pytest.raises(ValueError, match="stuck_after_days"):
        Pipeline(stuck_after_days={"lead": 0})
