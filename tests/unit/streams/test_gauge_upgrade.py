"""A worker upgraded over a changelog whose cores hold fewer gauge cells than the
deals and tasks count in now (open deals by age band and by amount came later):
the restored manager's gauges are counted again from its items before use, so
the first deal to leave a stage does not take away what was never added.
"""

from __future__ import annotations

from datetime import timedelta

import orjson

from metrics.exposition import StateExposition
from streams.state import manager_key
from tests.support.harness import NOW, Harness, deal_created, stage_changed, task_created
from tests.support.scrape import Samples, parse

T0 = NOW - timedelta(days=3)
GAUGES = (
    "salespulse_open_deals",
    "salespulse_open_deals_amount",
    "salespulse_team_open_deals_stage_age_at_most",
    "salespulse_open_tasks",
)


def gauges(h: Harness) -> Samples:
    samples = parse(StateExposition(h.settings).text(h.store.records(), NOW))
    return {key: value for key, value in samples.items() if key[0] in GAUGES}


def as_written_before(h: Harness) -> None:
    """Rewrite every core record in the changelog as an older worker wrote it:
    no gauge-cell version, and only the open-deal counts among its gauges."""
    for index, (partition, key, value) in enumerate(h.changelog):
        if key == manager_key(0, "m-a") and value:
            body = orjson.loads(value)
            body.pop("G")
            body["g"] = []  # what an older core lacked, gone; the rebuild brings all
            h.changelog[index] = (partition, key, orjson.dumps(body))


def test_a_core_from_before_the_cells_gets_its_gauges_counted_again() -> None:
    h = Harness()
    h.send(
        deal_created("m-a", "D1", T0, amount=1000.0),
        deal_created("m-a", "D2", T0, amount=500.0),
        stage_changed("m-a", "D2", "proposal", T0 + timedelta(hours=2)),
        task_created("m-a", "T1", "call", T0, NOW + timedelta(days=1)),
    )
    h.tick(NOW)
    expected = gauges(h)
    assert expected, "the case must have open deals and tasks"
    h.persist()
    as_written_before(h)
    h.restart()
    h.tick(NOW)  # the first use of the restored manager
    assert gauges(h) == expected
    h.send(stage_changed("m-a", "D1", "lost", NOW))
    h.persist()
    h.restart()
    after = gauges(h)
    assert (
        "salespulse_open_deals_amount",
        frozenset({("manager", "m-a"), ("pipeline", "default"), ("stage", "proposal")}),
    ) in after
    assert sum(v for k, v in after.items() if k[0] == "salespulse_open_deals") == 1
