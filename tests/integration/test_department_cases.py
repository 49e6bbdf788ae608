"""The department's four worked examples through the real broker and the live /metrics.

Each case is published as raw contract JSON; the test reads back exactly the
numerators and denominators the recording rules turn into ratios:
(a) throughput 20, 25, 21 (+12), (b) conversion 16% against 4% with the drop
from stage 4 to stage 5, (c) 44% of due tasks overdue, (d) 32-minute calls
against a team of 15 with a personal target of 27 minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from salespulse.broker import EmbeddedBroker
from salespulse.settings import DEFAULT_STAGES
from tests.support.kafka import publish_events
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, scrape, total

pytestmark = pytest.mark.integration

ZONE = ZoneInfo("Europe/Berlin")
STAGES = list(DEFAULT_STAGES)  # the nine-stage funnel of the examples
THROUGHPUT = {"m-1": 20, "m-2": 25, "m-3": 21, "m-4": 12}
# Deals reaching each of the nine stages: 25 -> 4 is 16%, 25 -> 1 is 4%.
FUNNEL = {
    "m-5": [25, 22, 19, 16, 13, 10, 7, 5, 4],
    "m-6": [25, 22, 19, 16, 4, 3, 2, 1, 1],
}
TASKS_DUE, TASKS_LATE = 25, 11  # m-7: 44% overdue
CALLS = {"m-8": (10, 1920.0), "m-9": (10, 900.0)}  # answered calls, seconds each

CONFIG = f"""
timezone = "Europe/Berlin"

[pipelines.default]
stages = {STAGES}
won = ["won"]
lost = ["lost"]

[kpi]
max_overdue_rate = 0.20
max_avg_call_duration_seconds = 900
max_throughput_deviation = 0.20

[managers.m-8]
name = "Long Caller"
team = "north"
kpi = {{ max_avg_call_duration_seconds = 1620 }}

[managers.m-9]
name = "Norm Caller"
team = "north"
"""


class Clock:
    """Strictly increasing event times inside the current month, ending before now."""

    def __init__(self, count: int) -> None:
        now = datetime.now(ZONE)
        month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        self.at = max(now - timedelta(seconds=count + 7200), month_start)

    def tick(self, seconds: float = 1.0) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def department_events() -> list[tuple[str, dict[str, Any]]]:
    clock = Clock(2000)
    events: list[tuple[str, dict[str, Any]]] = []
    counter = 0

    def deal(manager: str, deal_id: str, kind: str, stage: str) -> None:
        nonlocal counter
        counter += 1
        body: dict[str, Any] = {
            "event_id": f"e-{counter}",
            "occurred_at": iso(clock.tick()),
            "manager_id": manager,
            "deal_id": deal_id,
            "pipeline": "default",
            "amount": 1000,
        }
        if kind == "created":
            body.update(type="deal.created", stage=stage, product="crm-pro", channel="web")
        else:
            body.update(type="deal.stage_changed", to_stage=stage)
        events.append(("crm.deals", body))

    for manager, closed in THROUGHPUT.items():
        for n in range(closed):
            deal(manager, f"{manager}-{n}", "created", "lead")
            deal(manager, f"{manager}-{n}", "changed", "won" if n % 2 else "lost")

    for manager, reached in FUNNEL.items():
        for n in range(reached[0]):
            furthest = max(index for index, count in enumerate(reached) if n < count)
            deal(manager, f"{manager}-{n}", "created", "lead")
            if furthest > 0:
                deal(manager, f"{manager}-{n}", "changed", STAGES[furthest])  # skips stages
            if STAGES[furthest] != "won":
                deal(manager, f"{manager}-{n}", "changed", "lost")

    start = clock.tick()
    for n in range(TASKS_DUE):
        counter += 1
        due = start + timedelta(minutes=30)
        events.append(
            (
                "crm.tasks",
                {
                    "event_id": f"e-{counter}",
                    "type": "task.created",
                    "occurred_at": iso(start + timedelta(seconds=n)),
                    "manager_id": "m-7",
                    "task_id": f"T{n}",
                    "task_type": "call",
                    "due_at": iso(due),
                },
            )
        )
    for n in range(TASKS_DUE):
        counter += 1
        done = start + timedelta(minutes=60 if n < TASKS_LATE else 20, seconds=n)
        events.append(
            (
                "crm.tasks",
                {
                    "event_id": f"e-{counter}",
                    "type": "task.completed",
                    "occurred_at": iso(done),
                    "manager_id": "m-7",
                    "task_id": f"T{n}",
                },
            )
        )
    events.sort(key=lambda item: item[1]["occurred_at"] if item[0] == "crm.tasks" else "")

    for manager, (answered, seconds) in CALLS.items():
        for n in range(answered):
            counter += 1
            events.append(
                (
                    "crm.calls",
                    {
                        "event_id": f"e-{counter}",
                        "type": "call.ended",
                        "occurred_at": iso(clock.tick()),
                        "manager_id": manager,
                        "call_id": f"{manager}-C{n}",
                        "direction": "outbound",
                        "duration_seconds": seconds,
                    },
                )
            )
    return events


@pytest.fixture
def department_config(tmp_path: Path) -> Path:
    path = tmp_path / "department.toml"
    path.write_text(CONFIG)
    return path


def test_the_four_worked_examples_on_the_live_endpoint(
    broker: EmbeddedBroker, tmp_path: Path, department_config: Path
) -> None:
    events = department_events()
    worker = WorkerProcess(broker.url, department_config, tmp_path).start()
    try:
        worker.wait_ready()
        publish_events(broker.bootstrap, events)

        def settled() -> Samples | None:
            samples = scrape(worker.metrics_port)
            done = total(samples, "salespulse_events_total", outcome="processed")
            return samples if done >= len(events) else None

        samples = wait_for(settled, timeout=90, what="all department events processed")
    finally:
        worker.stop()

    assert total(samples, "salespulse_events_total") == len(events)

    # (a) throughput: deals closed this month per manager
    for manager, closed in THROUGHPUT.items():
        month = {"manager": manager, "window": "month"}
        assert total(samples, "salespulse_period_deals_closed", **month) == closed
        assert (
            total(samples, "salespulse_period_deals_closed", outcome="won", **month) == closed // 2
        )

    # (b) funnel: deals reaching each stage, this month and over all history
    for manager, reached in FUNNEL.items():
        for stage, count in zip(STAGES, reached, strict=True):
            assert (
                total(
                    samples,
                    "salespulse_period_stage_reached",
                    manager=manager,
                    window="month",
                    stage=stage,
                )
                == count
            ), (manager, stage)
            assert (
                total(
                    samples, "salespulse_funnel_stage_reached_total", manager=manager, stage=stage
                )
                == count
            )
        won = total(samples, "salespulse_deals_closed_total", manager=manager, outcome="won")
        lost = total(samples, "salespulse_deals_closed_total", manager=manager, outcome="lost")
        assert (won, lost) == (reached[-1], reached[0] - reached[-1])
    assert (
        total(
            samples, "salespulse_funnel_stage_info", stage="demo", previous_stage="needs_analysis"
        )
        == 1
    )

    # (c) tasks: 11 of the 25 tasks whose deadline passed overdue
    month = {"manager": "m-7", "window": "month"}
    assert total(samples, "salespulse_period_tasks_deadline_passed", **month) == TASKS_DUE
    assert total(samples, "salespulse_period_tasks_overdue", **month) == TASKS_LATE
    assert total(samples, "salespulse_tasks_overdue_total", manager="m-7") == TASKS_LATE
    assert (
        total(samples, "salespulse_tasks_completed_total", manager="m-7", on_time="false")
        == TASKS_LATE
    )
    assert (
        total(samples, "salespulse_tasks_completed_total", manager="m-7", on_time="true")
        == TASKS_DUE - TASKS_LATE
    )
    assert total(samples, "salespulse_kpi_target", kpi="max_overdue_rate", manager="") == 0.2

    # (d) calls: talk time and answered calls, and the targets they are held to
    for manager, (answered, seconds) in CALLS.items():
        month = {"manager": manager, "window": "month"}
        assert total(samples, "salespulse_period_calls", answered="true", **month) == answered
        assert (
            total(samples, "salespulse_period_call_duration_seconds", **month) == answered * seconds
        )
    target = "max_avg_call_duration_seconds"
    assert total(samples, "salespulse_kpi_target", kpi=target, manager="m-8") == 1620
    assert total(samples, "salespulse_kpi_target", kpi=target, manager="m-9") == 900
    assert total(samples, "salespulse_kpi_target", kpi=target, manager="") == 900
    info = {
        dict(series).get("manager"): dict(series)
        for (name, series) in samples
        if name == "salespulse_manager_info"
    }
    assert info["m-8"]["team"] == "north"
    assert info["m-1"]["name"] == "m-1"  # seen in events, not configured
