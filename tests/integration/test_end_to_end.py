"""The whole stack on 127.0.0.1: broker, worker, simulated floor, Prometheus, Alertmanager.

Prometheus scrapes the real worker and evaluates the project's own rule files;
every PromQL query of every dashboard panel must return data; and a
delinquency spike published through the broker must travel as
``SalespulseDelinquencySpike`` through Alertmanager's own routing to a
webhook receiver in the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from salespulse.broker import EmbeddedBroker
from salespulse.config import DEMO_CONFIG
from salespulse.wall.sources import PrometheusSource, WorkersSource
from schemas.partitioning import partition_for
from tests.support.dashboards import iter_queries, load_dashboards, render_expr
from tests.support.kafka import publish_events, publish_raw, publish_to_partition
from tests.support.monitoring import Alertmanager, Prometheus, WebhookReceiver, backfill
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import scrape, total

pytestmark = pytest.mark.integration

SPIKE_TEAM = "Spike"
SPIKE_MANAGERS = ("s-1", "s-2", "s-3")
TEAMS = ("North", "South", "Key Accounts", SPIKE_TEAM)
WINDOWS = ("week", "day", "month")
# The demo company's KPI change is the long caller's (m-02), its first intervention m-01's.
MANAGERS = ("m-01", "m-02")


def config_with_spike_team(path: Path) -> Path:
    """The demo company plus a team the simulator does not staff."""
    extra = "".join(
        f'\n[managers.{m}]\nname = "Spike {n}"\nteam = "{SPIKE_TEAM}"\n'
        for n, m in enumerate(SPIKE_MANAGERS, 1)
    )
    path.write_text(DEMO_CONFIG.read_text() + extra)
    return path


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def spike_events(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Ten tasks each due ten minutes ago, half of them completed late: 50% overdue today."""
    events: list[tuple[str, dict[str, Any]]] = []
    for manager in SPIKE_MANAGERS:
        for n in range(10):
            events.append(
                (
                    "crm.tasks",
                    {
                        "event_id": f"{manager}-T{n}-created",
                        "type": "task.created",
                        "occurred_at": iso(now - timedelta(minutes=30, seconds=-n)),
                        "manager_id": manager,
                        "task_id": f"{manager}-T{n}",
                        "task_type": "call",
                        "due_at": iso(now - timedelta(minutes=10)),
                    },
                )
            )
        completions = [
            (n, now - timedelta(minutes=20) if n % 2 else now - timedelta(minutes=2))
            for n in range(10)
        ]
        for n, done in sorted(completions, key=lambda item: item[1]):
            events.append(
                (
                    "crm.tasks",
                    {
                        "event_id": f"{manager}-T{n}-done",
                        "type": "task.completed",
                        "occurred_at": iso(done),
                        "manager_id": manager,
                        "task_id": f"{manager}-T{n}",
                    },
                )
            )
    return events


def won_deals(now: datetime, wave: int) -> list[tuple[str, dict[str, Any]]]:
    """Deals walked through the funnel and won: stage times, sales cycles, segments,
    customers."""
    events: list[tuple[str, dict[str, Any]]] = []
    stages = ["qualified", "contacted", "needs_analysis", "demo", "proposal", "won"]
    for manager in ("m-01", "m-04", "m-07"):
        for n in range(3):
            deal = f"E2E-{wave}-{manager}-{n}"
            start = now - timedelta(hours=5)
            events.append(
                (
                    "crm.deals",
                    {
                        "event_id": f"{deal}-created",
                        "type": "deal.created",
                        "occurred_at": iso(start),
                        "manager_id": manager,
                        "deal_id": deal,
                        "stage": "lead",
                        "amount": 5000 + n,
                        "product": "crm-pro",
                        "channel": "website",
                        "segment": "smb",
                        # Two customers a manager: the second deal of one adds no customer.
                        "customer_id": f"E2E-{manager}-customer-{n % 2}",
                    },
                )
            )
            for step, stage in enumerate(stages, 1):
                events.append(
                    (
                        "crm.deals",
                        {
                            "event_id": f"{deal}-{stage}",
                            "type": "deal.stage_changed",
                            "occurred_at": iso(start + timedelta(minutes=40 * step)),
                            "manager_id": manager,
                            "deal_id": deal,
                            "to_stage": stage,
                        },
                    )
                )
    return events


@pytest.fixture
def simulator(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env.update(SALESPULSE_BROKER=broker.url, SALESPULSE_CONFIG=str(DEMO_CONFIG))
    with open(tmp_path / "simulator.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "salespulse", "simulate", "--rate", "150", "--speed", "1800"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield process
    process.terminate()
    process.wait(30)


def test_rules_dashboards_and_alerts_against_the_running_stack(
    broker: EmbeddedBroker, tmp_path: Path, simulator: subprocess.Popen[bytes]
) -> None:
    now = datetime.now(UTC)
    config = config_with_spike_team(tmp_path / "company.toml")
    worker = WorkerProcess(broker.url, config, tmp_path).start()
    receiver = WebhookReceiver()
    alertmanager = Alertmanager(tmp_path, receiver)
    # Yesterday at this time the spike team had 5% of its due tasks overdue.
    data = tmp_path / "prometheus-data"
    yesterday = now.timestamp() - 86400
    backfill(
        data,
        f'team_window:salespulse_overdue_rate:ratio{{team="{SPIKE_TEAM}",window="day"}}',
        [(yesterday + offset, 0.05) for offset in range(-1800, 1800, 15)],
        tmp_path,
    )
    prometheus = Prometheus(
        tmp_path, [f"127.0.0.1:{worker.metrics_port}"], alertmanager.address, data
    )
    try:
        worker.wait_ready()
        publish_events(broker.bootstrap, won_deals(now, wave=1))
        wait_for(
            lambda: prometheus.query("salespulse_deals_created_total"),
            timeout=90,
            what="prometheus scraping the worker",
        )
        # A second wave after scraping began, so every rate() sees an increase.
        publish_events(broker.bootstrap, won_deals(now, wave=2))
        publish_events(broker.bootstrap, spike_events(now))
        # Something for the processor dashboard's rejection and overflow panels.
        publish_raw(broker.bootstrap, [("crm.calls", b"m-01", b"{not json")] * 3)
        unlisted = won_deals(now, wave=3)[0]
        unlisted[1]["product"] = "mystery-box"  # not among the demo company's products
        publish_events(broker.bootstrap, [unlisted])
        # ... and for its rerouted messages: a deal on another partition than its key's.
        topic, misplaced = won_deals(now, wave=4)[0]
        key = misplaced["manager_id"].encode()
        elsewhere = (partition_for(key, 4) + 1) % 4
        publish_to_partition(
            broker.bootstrap, topic, elsewhere, key, json.dumps(misplaced).encode()
        )
        wait_for(
            lambda: (
                total(scrape(worker.metrics_port), "salespulse_tasks_overdue_total", manager="s-3")
                == 5
            ),
            timeout=60,
            what="the spike in the worker",
        )

        # The spike reaches Alertmanager and, through its routing, the team's pager.
        def spike_delivered() -> list[tuple[str, dict[str, Any]]]:
            return [
                (path, alert)
                for path, alert in receiver.alerts("SalespulseDelinquencySpike")
                if alert["labels"].get("team") == SPIKE_TEAM and alert["status"] == "firing"
            ]

        delivered = wait_for(spike_delivered, timeout=120, what="the spike alert at the webhook")
        path, alert = delivered[0]
        assert path.endswith("/sales-ops-pager")  # a team without a pager of its own
        assert alert["labels"]["severity"] == "page"
        assert "50%" in alert["annotations"]["summary"]
        assert "15" in alert["annotations"]["description"]
        assert "30" in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith("#salespulsedelinquencyspike")

        # Every query of every dashboard panel returns data, for some team and window.
        missing = wait_for_all_dashboard_data(prometheus)
        assert missing == [], "queries without data:\n" + "\n".join(missing)

        # The web wall, read from the recording rules, shows what it shows when read
        # from the worker itself: the spike manager's half of tasks overdue today.
        def wall_spike(source: PrometheusSource | WorkersSource) -> dict[str, Any] | None:
            shown = asyncio.run(source.read("day"))["managers"]
            return next((m for m in shown if m["manager"] == "s-3" and m["overdue_rate"]), None)

        ruled = wait_for(
            lambda: wall_spike(PrometheusSource(f"http://127.0.0.1:{prometheus.port}")),
            timeout=60,
            what="the spike on the wall read from Prometheus",
        )
        direct = wall_spike(WorkersSource([f"http://127.0.0.1:{worker.metrics_port}/metrics"]))
        assert direct is not None
        assert ruled["overdue_rate"] == direct["overdue_rate"] == 0.5
        assert ruled["grades"]["overdue_rate"] == direct["grades"]["overdue_rate"]
    finally:
        prometheus.stop()
        alertmanager.stop()
        receiver.stop()
        worker.stop()


def dashboard_queries_without_data(prometheus: Prometheus) -> list[str]:
    missing = []
    for dashboard in load_dashboards().values():
        for query in iter_queries(dashboard):
            if not any(
                prometheus.query(
                    render_expr(query.expr, {"team": team, "window": window, "manager": manager})
                )
                for team in TEAMS
                for window in WINDOWS
                for manager in MANAGERS
            ):
                missing.append(f"{query.dashboard} / {query.panel}: {query.expr}")
    return missing


def wait_for_all_dashboard_data(prometheus: Prometheus) -> list[str]:
    """Queries still empty once the stack has had time to fill every series."""
    last: list[str] = []

    def probe() -> bool:
        nonlocal last
        last = dashboard_queries_without_data(prometheus)
        return not last

    try:
        wait_for(probe, timeout=120, interval=5, what="data for every dashboard query")
    except AssertionError:
        return last
    return []
