"""The web wall in a real browser, against a live worker fed with the seed's examples.

Three managers of one team close 20, 25 and 21 deals this month: the team
average is 22. Boris has 25 tasks past their deadline, 11 never done: 44%
overdue against the team's 20% KPI, red. Anna's answered calls last 32
minutes against the team's 15-minute KPI, red; Chloe's last 20 minutes
against her own 25-minute KPI, so hers are not red: each manager is coloured
against the manager's own target. The events go through the embedded broker
into a worker process; ``salespulse wall`` runs as its own process reading
the worker's /metrics; headless Chromium loads the page and the test reads
the figures from the DOM.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from salespulse.broker import EmbeddedBroker, free_port
from tests.integration.test_overdue_rate import zone_mid_month
from tests.support.browser import chromium_page
from tests.support.harness import call, deal_created, stage_changed, task_completed, task_created
from tests.support.kafka import publish_events
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import scrape, total

pytestmark = pytest.mark.integration

CLOSED = {"m-1": 20, "m-2": 25, "m-3": 21}
DEADLINE = 60_000  # ms for the page to show a figure


def company(path: Path, zone: str) -> Path:
    path.write_text(
        f'timezone = "{zone}"\n\n'
        "[pipelines.default]\n"
        'stages = ["lead", "qualified", "won"]\n'
        'won = ["won"]\n'
        'lost = ["lost"]\n\n'
        "[kpi]\nmax_overdue_rate = 0.20\nmax_avg_call_duration_seconds = 900\n"
        "max_throughput_deviation = 0.20\n\n"
        '[managers.m-1]\nname = "Anna Petrova"\nteam = "North"\n\n'
        '[managers.m-2]\nname = "Boris Ivanov"\nteam = "North"\n\n'
        '[managers.m-3]\nname = "Chloe Martin"\nteam = "North"\n\n'
        "[managers.m-3.kpi]\nmax_avg_call_duration_seconds = 1500\n"
    )
    return path


def examples(now: datetime) -> list[tuple[str, dict[str, Any]]]:
    """The seed's examples, all within the last six hours."""
    start = now - timedelta(hours=5, minutes=30)
    events: list[tuple[str, dict[str, Any]]] = []
    for manager, closed in CLOSED.items():
        for n in range(closed):
            at = start + timedelta(seconds=n)
            deal = f"{manager}-D{n}"
            events.append(("crm.deals", deal_created(manager, deal, at, pipeline="default")))
            events.append(
                (
                    "crm.deals",
                    stage_changed(
                        manager, deal, "won", at + timedelta(minutes=1), pipeline="default"
                    ),
                )
            )
    for manager, seconds in (("m-1", 1920), ("m-3", 1200)):
        for n in range(4):
            events.append(("crm.calls", call(manager, f"{manager}-C{n}", seconds, start)))
    for n in range(25):  # Boris: 25 deadlines passed, the first 11 never met
        due = now - timedelta(hours=5) + timedelta(minutes=10 * n)
        events.append(("crm.tasks", task_created("m-2", f"T{n}", "call", start, due=due)))
        if n >= 11:
            done = due - timedelta(minutes=2)
            events.append(("crm.tasks", task_completed("m-2", f"T{n}", done)))
    return sorted(events, key=lambda item: str(item[1]["occurred_at"]))


@pytest.fixture
def wall(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[str]:
    """A worker fed with the examples and ``salespulse wall`` reading it; the page's URL."""
    now = datetime.now(UTC)
    worker = WorkerProcess(
        broker.url, company(tmp_path / "company.toml", zone_mid_month(now)), tmp_path
    )
    worker.start()
    port = free_port()
    log = open(tmp_path / "wall.log", "wb")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    wall = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "salespulse",
            "wall",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--url",
            f"http://127.0.0.1:{worker.metrics_port}/metrics",
            "--window",
            "month",
            "--refresh",
            "2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    log.close()
    try:
        worker.wait_ready()
        events = examples(now)
        publish_events(broker.bootstrap, events)
        wait_for(
            lambda: total(scrape(worker.metrics_port), "salespulse_events_total") >= len(events),
            timeout=90,
            what=f"{len(events)} events processed",
        )
        url = f"http://127.0.0.1:{port}/"
        wait_for(
            lambda: urllib.request.urlopen(url, timeout=2).status == 200,
            timeout=30,
            what="the wall serving",
        )
        yield url
    finally:
        wall.terminate()
        wall.wait(30)
        worker.stop()


def test_the_wall_shows_the_seed_examples_in_chromium(wall: str) -> None:
    from playwright.sync_api import expect

    # Each expectation polls until its deadline: the worker counts a deadline as
    # passed on its own clock, some seconds after the events.
    expect.set_options(timeout=DEADLINE)
    with chromium_page() as page:
        page.goto(wall)
        team = page.locator('#teams [data-team="North"]')
        expect(team.locator('[data-field="average"]')).to_have_text("22")
        department = page.locator('[data-figure="department.average"] [data-value]')
        expect(department).to_have_text("22")

        boris = page.locator('#managers [data-manager="m-2"]')
        expect(boris.locator('[data-field="closed"]')).to_have_text("25")
        overdue = boris.locator('[data-field="overdue_rate"]')
        expect(overdue).to_have_text("44%")
        expect(overdue).to_have_attribute("data-grade", "bad")

        anna_call = page.locator('#managers [data-manager="m-1"] [data-field="avg_call_seconds"]')
        expect(anna_call).to_have_text("32:00")
        expect(anna_call).to_have_attribute("data-grade", "bad")
        chloe_call = page.locator('#managers [data-manager="m-3"] [data-field="avg_call_seconds"]')
        expect(chloe_call).to_have_text("20:00")
        expect(chloe_call).to_have_attribute("data-grade", "near")  # over 75% of her own 25

        red = page.evaluate(
            "getComputedStyle(document.querySelector("
            '\'#managers [data-manager="m-2"] [data-field="overdue_rate"]\')).color'
        )
        assert red == "rgb(255, 77, 77)", "the bad grade is drawn red"
        team_overdue = team.locator('[data-field="overdue_rate"]')
        expect(team_overdue).to_have_text("44%")  # Boris's are the team's only deadlines
        shot = os.environ.get("SALESPULSE_WALL_SCREENSHOT")
        if shot:
            page.screenshot(path=shot)
