"""The open pipeline's value per stage, and what the forecast's rules read beside it.

An open deal counts its amount in its current stage (0 without one); the amount
moves with the deal when it changes stage or amount and leaves when the deal
closes, and nothing of it is left behind once the last deal of a stage has gone,
whatever float rounding the amounts brought.
"""

from __future__ import annotations

from datetime import timedelta

from metrics.exposition import StateExposition
from salespulse.settings import Manager
from tests.support.harness import NOW, Harness, deal_created, stage_changed
from tests.support.scrape import Samples, parse, total

T0 = NOW - timedelta(days=3)
HOUR = timedelta(hours=1)
AMOUNT = "salespulse_open_deals_amount"


def harness() -> Harness:
    return Harness(managers={"m-a": Manager(name="A", team="North")})


def scrape(h: Harness) -> Samples:
    return parse(StateExposition(h.settings).text(h.store.records(), NOW))


def amounts(h: Harness) -> dict[str, float]:
    """Stage -> the manager's open amount there, for the stages that have a series."""
    return {
        dict(labels)["stage"]: value
        for (name, labels), value in scrape(h).items()
        if name == AMOUNT and dict(labels)["manager"] == "m-a"
    }


def test_the_amount_moves_with_the_deal_and_leaves_when_it_closes() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0, amount=1000.0), deal_created("m-a", "D2", T0))
    assert amounts(h) == {"lead": 1100.0}
    h.send(stage_changed("m-a", "D1", "contacted", T0 + HOUR, amount=1500.0))
    assert amounts(h) == {"lead": 100.0, "contacted": 1500.0}
    h.send(stage_changed("m-a", "D2", "won", T0 + 2 * HOUR))
    assert amounts(h) == {"contacted": 1500.0}
    h.send(stage_changed("m-a", "D1", "lost", T0 + 3 * HOUR))
    assert amounts(h) == {}


def test_a_deal_without_an_amount_counts_zero_beside_its_count() -> None:
    h = harness()
    event = deal_created("m-a", "D1", T0)
    del event["amount"]
    h.send(event)
    samples = scrape(h)
    assert total(samples, "salespulse_open_deals", manager="m-a", stage="lead") == 1
    assert amounts(h) == {"lead": 0.0}


def test_rounding_leaves_no_series_behind_the_last_deal() -> None:
    h = harness()
    h.send(
        deal_created("m-a", "D1", T0, amount=0.1),
        deal_created("m-a", "D2", T0, amount=0.2),
        deal_created("m-a", "D3", T0, amount=0.7),
    )
    for deal in ("D2", "D1", "D3"):  # 0.1 + 0.2 + 0.7 - 0.2 - 0.1 is not 0.7 in floats
        h.send(stage_changed("m-a", deal, "lost", T0 + HOUR))
    assert amounts(h) == {}


def test_a_restart_keeps_the_amounts() -> None:
    h = harness()
    h.send(deal_created("m-a", "D1", T0, amount=250.0))
    h.persist()
    h.restart()
    assert amounts(h) == {"lead": 250.0}
    h.send(stage_changed("m-a", "D1", "contacted", T0 + HOUR))
    assert amounts(h) == {"contacted": 250.0}


def test_the_funnel_order_and_the_month_left_are_exported_for_the_rules() -> None:
    h = harness()
    samples = scrape(h)
    follows = {
        (labels["team"], labels["stage"], labels["later_stage"])
        for (name, frozen), _ in samples.items()
        if name == "salespulse_funnel_stage_follows"
        for labels in [dict(frozen)]
    }
    open_stages = h.settings.pipelines["default"].stages[:-1]  # "won" closes the funnel
    assert len(follows) == 2 * len(open_stages) * (len(open_stages) + 1) // 2  # North and ""
    assert ("North", "lead", "lead") in follows
    assert ("", "proposal", "contract") in follows
    assert ("North", "contract", "proposal") not in follows
    assert not any("won" in pair for pair in follows)
    # 2026-11-23 12:00 UTC is 13:00 in Berlin: 7 days and 11 hours before December.
    left = total(samples, "salespulse_calendar_month_seconds_left")
    assert left == (7 * 24 + 11) * 3600
