"""Customers won, per segment and period: what each segment's customers bring.

A deal keeps the customer its creation named (a 64-bit hash, never the text);
each open period of a manager remembers the customers it counted, so a second
deal won with one customer adds won value but no customer. Deals without
customer_id are won value and no customer: a segment's value per customer
counts them in the value only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from metrics.exposition import StateExposition
from streams.entities import DealState, customer_key
from streams.state import decode_core, encode_core
from tests.support.harness import NOW, Harness, deal_created, stage_changed
from tests.support.scrape import parse, total

T0 = NOW - timedelta(hours=3)  # the same local day, week and month as NOW


def won_deal(
    manager: str, deal: str, at: datetime, amount: float, **created: Any
) -> list[dict[str, Any]]:
    return [
        deal_created(manager, deal, at, amount=amount, segment="smb", **created),
        stage_changed(manager, deal, "won", at + timedelta(minutes=5)),
    ]


def exposed(h: Harness, now: datetime = NOW) -> dict[str, float]:
    """The team family's customers and won value per window, for team "" and smb."""
    samples = parse(StateExposition(h.settings).text(h.store.records(), now))
    found = {}
    for window in ("day", "week", "month"):
        for short in ("won_customers", "segment_won_amount"):
            found[f"{short}:{window}"] = total(
                samples, f"salespulse_team_period_{short}", window=window, segment="smb"
            )
    found["customers_total"] = total(
        samples, "salespulse_team_segment_won_customers_total", segment="smb"
    )
    return found


def test_two_deals_of_one_customer_count_one_customer_and_both_amounts() -> None:
    h = Harness()
    h.send(
        *won_deal("m-a", "D1", T0, 2000.0, customer_id="ACME"),
        *won_deal("m-a", "D2", T0 + timedelta(minutes=10), 4000.0, customer_id="ACME"),
        *won_deal("m-a", "D3", T0 + timedelta(minutes=20), 3000.0, customer_id="Globex"),
    )
    numbers = exposed(h)
    for window in ("day", "week", "month"):
        assert numbers[f"won_customers:{window}"] == 2
        assert numbers[f"segment_won_amount:{window}"] == 9000
    assert numbers["customers_total"] == 2


def test_a_deal_without_a_customer_is_won_value_but_no_customer() -> None:
    h = Harness()
    h.send(
        *won_deal("m-a", "D1", T0, 2000.0, customer_id="ACME"),
        *won_deal("m-a", "D2", T0 + timedelta(minutes=10), 5000.0),
    )
    numbers = exposed(h)
    assert numbers["won_customers:month"] == 1
    assert numbers["segment_won_amount:month"] == 7000
    assert numbers["customers_total"] == 1


def test_a_won_event_delivered_twice_or_won_again_counts_once() -> None:
    h = Harness()
    created, won = won_deal("m-a", "D1", T0, 2000.0, customer_id="ACME")
    h.send(created, won, won, stage_changed("m-a", "D1", "won", T0 + timedelta(minutes=9)))
    numbers = exposed(h)
    assert numbers["won_customers:day"] == 1
    assert numbers["segment_won_amount:day"] == 2000
    assert numbers["customers_total"] == 1


def test_managers_count_their_customers_each_and_the_team_sums_them() -> None:
    h = Harness()
    h.send(
        *won_deal("m-a", "D1", T0, 1000.0, customer_id="ACME"),
        *won_deal("m-b", "D2", T0, 1000.0, customer_id="ACME"),
    )
    assert exposed(h)["won_customers:month"] == 2  # distinct per manager, then summed


def test_the_customers_of_a_period_start_again_with_the_next_period() -> None:
    h = Harness()
    h.send(
        *won_deal("m-a", "D0", datetime(2026, 10, 30, 10, 0, tzinfo=UTC), 500.0, customer_id="A"),
        *won_deal("m-a", "D1", T0 - timedelta(days=1), 1000.0, customer_id="A"),  # Sunday
        *won_deal("m-a", "D2", T0, 1000.0, customer_id="A"),  # Monday: a new day and week
    )
    numbers = exposed(h)
    assert numbers["won_customers:day"] == 1
    assert numbers["won_customers:week"] == 1
    assert numbers["won_customers:month"] == 1
    assert numbers["segment_won_amount:week"] == 1000
    assert numbers["segment_won_amount:month"] == 2000
    assert numbers["customers_total"] == 2  # once in October, once in November
    assert len(h.manager("m-a").periods) == 3  # October's, and the closed day and week, gone


def test_a_restart_from_the_changelog_remembers_the_customers_counted() -> None:
    h = Harness()
    h.send(*won_deal("m-a", "D1", T0, 1000.0, customer_id="ACME"))
    h.restart()
    h.send(*won_deal("m-a", "D2", T0 + timedelta(minutes=30), 1000.0, customer_id="ACME"))
    numbers = exposed(h)
    assert numbers["won_customers:month"] == 1
    assert numbers["segment_won_amount:month"] == 2000
    assert numbers["customers_total"] == 1


def test_the_customer_text_never_reaches_the_changelog_or_metrics() -> None:
    h = Harness()
    h.send(*won_deal("m-a", "D1", T0, 1000.0, customer_id="Zimmermann Holding"))
    h.restart()
    deal = h.manager("m-a").deals.peek("D1")
    assert deal is not None
    assert deal.customer == customer_key("Zimmermann Holding")
    changelog = b"".join(key + (value or b"") for _, key, value in h.changelog)
    assert b"Zimmermann" not in changelog
    assert "Zimmermann" not in StateExposition(h.settings).text(h.store.records(), NOW)


def test_a_deal_record_written_before_customers_were_kept_has_none() -> None:
    deal = DealState(pipeline="default", segment="smb", amount=10.0, customer=customer_key("A"))
    older = deal.to_list()[:19]  # the record as written before the customer was added
    assert DealState.from_list(older).customer is None
    assert DealState.from_list(deal.to_list()) == deal


def test_a_core_record_written_before_periods_kept_customers_still_decodes() -> None:
    h = Harness()
    h.send(*won_deal("m-a", "D1", T0, 1000.0, customer_id="ACME"))
    state = h.manager("m-a")
    body = orjson.loads(encode_core(state, 1, {}))
    assert all(len(entry) == 3 for entry in body["P"].values())
    for entry in body["P"].values():
        del entry[2]  # periods as written before customers were kept
    older = decode_core(orjson.dumps(body)).state
    assert older.periods.keys() == state.periods.keys()
    for key, period in older.periods.items():
        assert not period.customers  # none remembered
        assert dict(period.cells.items()) == dict(state.periods[key].cells.items())
