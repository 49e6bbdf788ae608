"""The seed's worked example end to end on the real embedded broker.

Three managers close 20, 25 and 21 deals in one month (66 in all). The test
publishes raw contract JSON, reads exactly those numbers from the worker's
/metrics, and reads them again after a SIGTERM restart and after a SIGKILL
restart: the changelog tail must survive both. Replaying every event
afterwards must change no number.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from salespulse.broker import EmbeddedBroker
from tests.support.kafka import publish_events
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, scrape, total

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Berlin")
CLOSED = {"m-1": 20, "m-2": 25, "m-3": 21}
AMOUNT = 1500.0
CALLS = {"m-1": (3, 600.0), "m-2": (2, 900.0), "m-3": (4, 300.0)}  # answered calls, seconds each


def _base_time() -> datetime:
    """A moment in the current month, so the month gauges must show the example."""
    now = datetime.now(ZONE)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return max(now - timedelta(hours=1), month_start)


def worked_example() -> list[tuple[str, dict[str, Any]]]:
    base = _base_time()
    events: list[tuple[str, dict[str, Any]]] = []
    tick = 0

    def at() -> str:
        nonlocal tick
        tick += 1
        return (base + timedelta(seconds=tick)).astimezone(UTC).isoformat()

    for manager, closed in CLOSED.items():
        for n in range(closed):
            deal = f"{manager}-D{n}"
            events.append(
                (
                    "crm.deals",
                    {
                        "event_id": f"{deal}-created",
                        "type": "deal.created",
                        "occurred_at": at(),
                        "manager_id": manager,
                        "deal_id": deal,
                        "pipeline": "default",
                        "stage": "lead",
                        "amount": AMOUNT,
                        "product": "GTX Pro",
                        "channel": "web",
                    },
                )
            )
            events.append(
                (
                    "crm.deals",
                    {
                        "event_id": f"{deal}-won",
                        "type": "deal.stage_changed",
                        "occurred_at": at(),
                        "manager_id": manager,
                        "deal_id": deal,
                        "pipeline": "default",
                        "from_stage": "lead",
                        "to_stage": "won",
                    },
                )
            )
        answered, seconds = CALLS[manager]
        for n in range(answered):
            events.append(
                (
                    "crm.calls",
                    {
                        "event_id": f"{manager}-call-{n}",
                        "type": "call.ended",
                        "occurred_at": at(),
                        "manager_id": manager,
                        "call_id": f"{manager}-C{n}",
                        "direction": "outbound",
                        "duration_seconds": seconds,
                    },
                )
            )
        events.append(
            (
                "crm.calls",
                {
                    "event_id": f"{manager}-call-missed",
                    "type": "call.ended",
                    "occurred_at": at(),
                    "manager_id": manager,
                    "call_id": f"{manager}-missed",
                    "direction": "inbound",
                    "duration_seconds": 0,
                },
            )
        )
    return events


def assert_worked_example(samples: Samples, events: int) -> None:
    for manager, closed in CLOSED.items():
        assert total(samples, "salespulse_deals_created_total", manager=manager) == closed
        assert (
            total(samples, "salespulse_deals_closed_total", manager=manager, outcome="won")
            == closed
        )
        assert total(samples, "salespulse_deals_closed_total", manager=manager, outcome="lost") == 0
        assert (
            total(samples, "salespulse_deals_won_amount_total", manager=manager) == closed * AMOUNT
        )
        assert (
            total(
                samples,
                "salespulse_period_deals_closed",
                manager=manager,
                window="month",
                outcome="won",
            )
            == closed
        )
        assert (
            total(samples, "salespulse_period_won_amount", manager=manager, window="month")
            == closed * AMOUNT
        )
        answered, seconds = CALLS[manager]
        assert (
            total(samples, "salespulse_calls_total", manager=manager, answered="true") == answered
        )
        assert total(samples, "salespulse_calls_total", manager=manager, answered="false") == 1
        assert (
            total(samples, "salespulse_call_duration_seconds_total", manager=manager)
            == answered * seconds
        )
        assert (
            total(samples, "salespulse_period_calls", manager=manager, window="month")
            == answered + 1
        )
    assert total(samples, "salespulse_deals_closed_total", outcome="won") == 66
    assert total(samples, "salespulse_period_deals_closed", window="month", outcome="won") == 66
    assert total(samples, "salespulse_events_total", outcome="processed") == events
    assert total(samples, "salespulse_events_total") == events


def wait_for_events(worker: WorkerProcess, expected: float, **labels: str) -> Samples:
    def probe() -> Samples | None:
        samples = scrape(worker.metrics_port)
        seen = total(samples, "salespulse_events_total", **labels)
        return samples if seen >= expected else None

    return wait_for(probe, timeout=90, what=f"{expected} events {labels} on /metrics")


def test_worked_example_survives_sigterm_and_sigkill(
    broker: EmbeddedBroker, worker: WorkerProcess
) -> None:
    events = worked_example()
    worker.start().wait_ready()
    publish_events(broker.bootstrap, events)
    assert_worked_example(wait_for_events(worker, len(events)), len(events))

    for sig in (signal.SIGTERM, signal.SIGKILL):
        code = worker.stop(sig)
        if sig is signal.SIGTERM:
            assert code == 0, worker.tail()
        worker.start().wait_ready()
        samples = wait_for_events(worker, len(events))
        assert_worked_example(samples, len(events))

    # At-least-once delivery and retried webhooks: the same events again change nothing.
    publish_events(broker.bootstrap, events)
    samples = wait_for_events(worker, len(events), outcome="duplicate")
    assert total(samples, "salespulse_events_total", outcome="duplicate") == len(events)
    assert_worked_example(
        {k: v for k, v in samples.items() if ("outcome", "duplicate") not in k[1]}, len(events)
    )
