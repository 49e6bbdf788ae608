"""The processor without a broker: outcomes, idempotency, isolation, lateness."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.state import RejectedState
from tests.support.harness import (
    CALLS,
    DEALS,
    NOW,
    Harness,
    call,
    deal_created,
    settings,
    stage_changed,
)


def test_two_managers_never_mix_even_in_one_partition() -> None:
    h = Harness()
    at = NOW - timedelta(minutes=30)
    events = []
    for n in range(5):
        events.append(deal_created("m-a", f"A{n}", at))
        events.append(deal_created("m-b", f"B{n}", at))
        events.append(stage_changed("m-b", f"B{n}", "won", at, amount=10.0 * (n + 1)))
    h.run(DEALS, [h.message(DEALS, event) for event in events])
    h.run(
        CALLS,
        [h.message(CALLS, call("m-a", "c1", 60, at)), h.message(CALLS, call("m-b", "c2", 0, at))],
    )

    assert h.counter("m-a", "deals_created_total") == 5
    assert h.counter("m-b", "deals_created_total") == 5
    assert h.counter("m-a", "deals_closed_total") == 0
    assert h.counter("m-b", "deals_closed_total", "default", "won") == 5
    assert h.counter("m-b", "deals_won_amount_total") == 150.0
    assert h.counter("m-a", "calls_total", "outbound", "true") == 1
    assert h.counter("m-a", "call_duration_seconds_total") == 60
    assert h.counter("m-b", "calls_total", "outbound", "false") == 1
    assert h.counter("m-b", "call_duration_seconds_total") == 0
    assert h.counter("m-a", "events_total") == 6
    assert h.counter("m-b", "events_total") == 11


def test_redelivery_after_restart_changes_nothing() -> None:
    h = Harness()
    at = NOW - timedelta(minutes=5)
    messages = [
        h.message(DEALS, deal_created("m-a", "D1", at)),
        h.message(DEALS, stage_changed("m-a", "D1", "won", at)),
    ]
    h.run(DEALS, messages)
    before = dict(h.manager("m-a").counters)
    h.restart()
    h.run(DEALS, messages)  # Faust had not committed: the same offsets arrive again
    assert h.manager("m-a").counters == before
    assert h.counter("m-a", "events_total", DEALS, "deal.created", "processed") == 1


def test_redelivery_after_a_write_cut_short_is_not_counted_twice() -> None:
    """The core (holding the deal and its event ids) is written, the progress is not."""
    h = Harness()
    at = NOW - timedelta(minutes=5)
    message = h.message(DEALS, deal_created("m-a", "D1", at))
    h.processor.process(DEALS, [message])
    h.persist(steps=2)
    h.restart()
    h.run(DEALS, [message])
    assert h.counter("m-a", "deals_created_total") == 1
    assert h.counter("m-a", "events_total", DEALS, "deal.created", "processed") == 1
    assert h.counter("m-a", "events_total", DEALS, "deal.created", "duplicate") == 0


def test_repeated_event_id_is_a_duplicate_and_changes_no_number() -> None:
    h = Harness()
    at = NOW - timedelta(minutes=5)
    event = call("m-a", "call-1", 120, at)
    h.run(CALLS, [h.message(CALLS, event)])
    h.restart()
    h.run(CALLS, [h.message(CALLS, event), h.message(CALLS, event)])  # a webhook retried twice
    assert h.counter("m-a", "calls_total") == 1
    assert h.counter("m-a", "call_duration_seconds_total") == 120
    assert h.counter("m-a", "events_total", CALLS, "call.ended", "duplicate") == 2


def test_a_deal_closes_once_however_often_it_moves() -> None:
    h = Harness()
    at = NOW - timedelta(minutes=10)
    events = [
        deal_created("m-a", "D1", at),
        stage_changed("m-a", "D1", "won", at + timedelta(minutes=1), amount=500.0),
        stage_changed("m-a", "D1", "proposal", at + timedelta(minutes=2)),
        stage_changed("m-a", "D1", "won", at + timedelta(minutes=3), amount=900.0),
        stage_changed("m-a", "D1", "lost", at + timedelta(minutes=4)),
    ]
    h.run(DEALS, [h.message(DEALS, event) for event in events])
    assert h.counter("m-a", "deals_closed_total") == 1
    assert h.counter("m-a", "deals_won_amount_total") == 500.0


def test_late_event_counts_in_history_but_not_in_closed_periods() -> None:
    h = Harness()
    recent = NOW - timedelta(minutes=1)
    old = NOW - timedelta(days=3)
    h.run(CALLS, [h.message(CALLS, call("m-a", "new", 60, recent))])
    h.run(CALLS, [h.message(CALLS, call("m-a", "old", 30, old))])
    state = h.manager("m-a")
    assert h.counter("m-a", "call_duration_seconds_total") == 90
    assert h.counter("m-a", "events_total", CALLS, "call.ended", "late") == 1
    old_day = f"day:{old.astimezone(h.processor.zone).date().isoformat()}"
    assert old_day not in state.periods
    day_now = f"day:{recent.astimezone(h.processor.zone).date().isoformat()}"
    assert state.periods[day_now].cells[("call_duration_seconds",)] == 60


def test_within_grace_an_out_of_order_event_updates_its_period() -> None:
    h = Harness()
    h.run(CALLS, [h.message(CALLS, call("m-a", "later", 60, NOW - timedelta(minutes=1)))])
    h.run(CALLS, [h.message(CALLS, call("m-a", "earlier", 30, NOW - timedelta(minutes=20)))])
    assert h.counter("m-a", "events_total", CALLS, "call.ended", "processed") == 2
    day = f"day:{NOW.astimezone(h.processor.zone).date().isoformat()}"
    assert h.manager("m-a").periods[day].cells[("call_duration_seconds",)] == 90


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[]", "not_an_object"),
        (b"", "empty_message"),
    ],
)
def test_rejections_are_dead_lettered_once_even_after_restart(raw: bytes, reason: str) -> None:
    h = Harness()
    message = h.message(DEALS, raw)
    dead = h.run(DEALS, [message])
    assert [letter.rejection.reason for letter in dead] == [reason]
    h.restart()
    assert h.run(DEALS, [message]) == []
    rejected = h.store.rejected(0, DEALS)
    assert isinstance(rejected, RejectedState)
    assert rejected.counters[("events_total", DEALS, "invalid", "rejected")] == 1
    assert rejected.counters[("events_rejected_total", DEALS, reason)] == 1


def test_unknown_pipeline_and_stage_are_rejected_with_the_reason() -> None:
    h = Harness()
    at = NOW - timedelta(minutes=1)
    dead = h.run(
        DEALS,
        [
            h.message(DEALS, deal_created("m-a", "D1", at, pipeline="enterprise")),
            h.message(DEALS, stage_changed("m-a", "D1", "closing", at)),
        ],
    )
    assert [letter.rejection.reason for letter in dead] == ["unknown_pipeline", "unknown_stage"]
    assert "enterprise" in dead[0].rejection.detail
    assert "closing" in dead[1].rejection.detail


def test_event_on_the_wrong_topic_is_rejected() -> None:
    h = Harness()
    dead = h.run(DEALS, [h.message(DEALS, call("m-a", "c1", 10, NOW))])
    assert dead[0].rejection.reason == "wrong_topic"
    assert dead[0].rejection.event_type == "call.ended"


def test_dedupe_memory_expires_beyond_the_horizon() -> None:
    h = Harness()
    horizon = settings().dedupe_horizon_days
    first = NOW - timedelta(days=horizon + 3)
    h.run(CALLS, [h.message(CALLS, call("m-a", "c-old", 10, first))])
    h.run(CALLS, [h.message(CALLS, call("m-a", "c-new", 10, NOW))])
    state = h.manager("m-a")
    newest_day = NOW.astimezone(h.processor.zone).date().toordinal()
    assert state.calls.names() == [newest_day]
    assert h.live_records() == {b"m": 1, b"c": 1}  # the manager's core and one day of call ids


def test_a_flood_of_unknown_managers_is_capped_and_dead_lettered() -> None:
    h = Harness(max_unconfigured_managers=3)
    dead = h.run(CALLS, [h.message(CALLS, call(f"flood-{n}", f"c{n}", 10, NOW)) for n in range(10)])
    assert [letter.rejection.reason for letter in dead] == ["manager_limit"] * 7
    assert "max_unconfigured_managers" in dead[0].rejection.detail
    h.restart()  # the cap counts the managers already in the state
    dead = h.run(CALLS, [h.message(CALLS, call("flood-new", "c-new", 10, NOW))])
    assert [letter.rejection.reason for letter in dead] == ["manager_limit"]
    assert h.run(CALLS, [h.message(CALLS, call("flood-1", "c-again", 10, NOW))]) == []
    rejected = h.store.rejected(0, CALLS)
    assert isinstance(rejected, RejectedState)
    assert rejected.counters[("events_rejected_total", CALLS, "manager_limit")] == 8
