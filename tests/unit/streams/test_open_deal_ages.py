"""Open deals by their time in the current stage, per team: the input for "stuck
beyond the team's usual time in the stage" without a configured limit.

A deal's age band moves on when a clock passes its next bound (the sweep, as
for stuck deals), restarts when it changes stage and leaves when it closes.
"""

from __future__ import annotations

from datetime import timedelta

from metrics.exposition import StateExposition
from salespulse.settings import Manager
from streams.entities import DealState
from tests.support.harness import NOW, Harness, deal_created, stage_changed
from tests.support.scrape import parse, total

T0 = NOW - timedelta(days=20)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FAMILY = "salespulse_team_open_deals_stage_age_at_most"


def harness() -> Harness:
    return Harness(managers={"m-a": Manager(name="A", team="North")})


def at_most(h: Harness, le: str, stage: str = "lead") -> float:
    samples = parse(StateExposition(h.settings).text(h.store.records(), NOW))
    return total(samples, FAMILY, team="North", pipeline="default", stage=stage, le=le)


def test_the_sweep_moves_a_deal_through_the_bounds_of_its_time_in_the_stage() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0))
    assert [at_most(h, le) for le in ("3600", "14400", "+Inf")] == [1, 1, 1]
    h.tick(T0 + 5 * HOUR)  # past 1 h and 4 h, within 12 h
    assert [at_most(h, le) for le in ("3600", "14400", "43200", "+Inf")] == [0, 0, 1, 1]
    h.tick(T0 + 8 * DAY)  # past 7 days, within 14
    assert [at_most(h, le) for le in ("604800", "1209600", "+Inf")] == [0, 1, 1]


def test_a_stage_change_starts_the_age_again_and_closing_takes_the_deal_out() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0), deal_created("m-a", "D2", T0))
    h.tick(T0 + 2 * DAY + HOUR)
    h.send(stage_changed("m-a", "D1", "contacted", T0 + 2 * DAY + 2 * HOUR))
    assert at_most(h, "172800") == 0  # D2, still a lead: more than 2 days
    assert at_most(h, "+Inf") == 1
    assert at_most(h, "3600", stage="contacted") == 1  # D1, just moved
    h.send(stage_changed("m-a", "D2", "lost", T0 + 2 * DAY + 3 * HOUR))
    assert at_most(h, "+Inf") == 0


def test_a_restart_keeps_the_bands_and_the_next_bounds() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0))
    h.tick(T0 + 2 * HOUR)
    h.persist()
    h.restart()
    assert [at_most(h, le) for le in ("3600", "14400")] == [0, 1]
    assert h.tick(T0 + 5 * HOUR) == 1  # the 4-hour bound, found again
    assert at_most(h, "14400") == 0


def test_a_deal_record_from_before_age_bands_starts_in_the_first_band() -> None:
    written = DealState("default", stage="lead", stage_entered_at=0.0).to_list()[:18]
    assert DealState.from_list(written).age_band == 0
