"""The seed's delinquent manager in the middle of a period, end to end: 0.44, not 0.24.

Raw events go through the real broker into a worker; Prometheus scrapes it
and evaluates the project's own rule files. 25 of the manager's tasks are past
their deadline this month, 11 of them never completed; 20 more are due later
this month. The overdue rate is 11 / 25 = 0.44 for the month and for the last
7 days; counting the 20 from their creation read 11 / 45 = 0.24.

The company's time zone is chosen so that "now" is at least six hours from
a month boundary (among UTC-12, UTC and UTC+14 one always is), so every
deadline below falls in the current month whatever the date of the run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from salespulse.broker import EmbeddedBroker
from tests.support.kafka import publish_events
from tests.support.monitoring import Prometheus
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.integration

ZONES = ("Etc/GMT+12", "UTC", "Etc/GMT-14")
PASSED = "manager_window:salespulse_tasks_deadline_passed:sum"
OVERDUE = "manager_window:salespulse_tasks_overdue:sum"
RATE = "manager_window:salespulse_overdue_rate:ratio"
MARGIN = timedelta(hours=6)


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def zone_mid_month(now: datetime) -> str:
    """The zone whose local "now" is furthest from the start and the end of its month."""

    def room(zone: str) -> timedelta:
        local = now.astimezone(ZoneInfo(zone))
        start, end = month_bounds(local)
        return min(local - start, end - local)

    best = max(ZONES, key=room)
    assert room(best) >= MARGIN
    return best


def company(path: Path, zone: str) -> Path:
    path.write_text(
        f'timezone = "{zone}"\n\n'
        "[pipelines.default]\n"
        'stages = ["lead", "qualified", "won"]\n'
        'won = ["won"]\n'
        'lost = ["lost"]\n\n'
        "[kpi]\nmax_overdue_rate = 0.20\n\n"
        '[managers.m-01]\nname = "Jonas Becker"\nteam = "North"\n'
    )
    return path


def event(kind: str, n: str, at: datetime, **fields: Any) -> tuple[str, dict[str, Any]]:
    return (
        "crm.tasks",
        {
            "event_id": f"{n}-{kind}",
            "type": kind,
            "occurred_at": at.isoformat(),
            "manager_id": "m-01",
            "task_id": n,
            **fields,
        },
    )


def seed_month(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """25 deadlines in the last five hours (11 never met), 20 in the next five."""
    created = now - MARGIN + timedelta(minutes=1)
    events = []
    for n in range(25):
        due = now - timedelta(hours=5) + timedelta(minutes=10 * n)  # the last one 1 h ago
        events.append(
            event(
                "task.created",
                f"P{n}",
                created + timedelta(seconds=n),
                task_type="call",
                due_at=due.isoformat(),
            )
        )
        if n >= 11:
            events.append(event("task.completed", f"P{n}", due - timedelta(minutes=2)))
    for n in range(20):
        due = now + timedelta(hours=1) + timedelta(minutes=12 * n)
        events.append(
            event(
                "task.created",
                f"L{n}",
                created + timedelta(minutes=30, seconds=n),
                task_type="email",
                due_at=due.isoformat(),
            )
        )
    return sorted(events, key=lambda item: str(item[1]["occurred_at"]))


def test_the_overdue_rate_mid_month_is_044_through_worker_and_rules(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    zone = zone_mid_month(now)
    worker = WorkerProcess(broker.url, company(tmp_path / "company.toml", zone), tmp_path)
    worker.start()
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{worker.metrics_port}"], None)
    try:
        worker.wait_ready()
        publish_events(broker.bootstrap, seed_month(now))

        def reads(expr: str) -> float | None:
            result = prometheus.query(expr)
            return float(result[0]["value"][1]) if result else None

        def settled(window: str) -> bool:
            """The window's counts, and the rate the next rule group makes of them."""
            selector = f'{{manager="m-01", window="{window}"}}'
            counts = (reads(PASSED + selector), reads(OVERDUE + selector))
            rate = reads(RATE + selector)
            return counts == (25.0, 11.0) and rate is not None and abs(rate - 0.44) < 1e-9

        for window in ("month", "7d"):
            wait_for(
                partial(settled, window),
                timeout=120,
                what=f"25 past their deadline, 11 overdue, 0.44 ({window})",
            )
        above = 'manager_window:salespulse_overdue_rate_above_target:bool{window="month"}'
        assert reads(above) == 1.0
    finally:
        prometheus.stop()
        worker.stop()
