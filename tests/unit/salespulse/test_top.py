"""`salespulse top`: the terminal wall screen computes the rules' ratios and colours them."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from metrics.exposition import StateExposition
from salespulse.kpis import fetch, summarize
from salespulse.settings import KpiTargets, Manager
from salespulse.top import GREEN, RED, render
from tests.support.harness import (
    NOW,
    Harness,
    call,
    deal_created,
    stage_changed,
    task_completed,
    task_created,
)

AT = NOW - timedelta(hours=3)


def exposition() -> bytes:
    h = Harness(
        kpi=KpiTargets(
            max_overdue_rate=0.2, max_avg_call_duration_seconds=900, max_throughput_deviation=0.2
        ),
        managers={
            "m-1": Manager(name="Anna", team="north"),
            "m-2": Manager(name="Boris", team="north"),
            "m-3": Manager(name="Chloe", team="north"),
        },
    )
    events = []
    for manager, closed in (("m-1", 20), ("m-2", 25), ("m-3", 12)):
        for n in range(closed):
            events.append(deal_created(manager, f"{manager}-{n}", AT))
            events.append(
                stage_changed(manager, f"{manager}-{n}", "won", AT + timedelta(minutes=1))
            )
    for n in range(10):
        events.append(call("m-1", f"c{n}", 1920, AT + timedelta(minutes=n)))
    for n in range(25):
        due = AT + timedelta(minutes=30)
        events.append(task_created("m-2", f"T{n}", "call", AT, due=due))
    on_time = [task_completed("m-2", f"T{n}", AT + timedelta(minutes=10)) for n in range(11, 25)]
    late = [task_completed("m-2", f"T{n}", AT + timedelta(minutes=60)) for n in range(11)]
    events.extend(on_time + late)  # in time order, as the CRM sends them
    h.send(*events)
    return StateExposition(h.settings).text(h.store.records(), NOW).encode()


@pytest.fixture
def metrics_url() -> Iterator[str]:
    body = exposition()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()


def test_summary_has_the_rules_numbers(metrics_url: str) -> None:
    rows = {row.manager: row for row in summarize(fetch([metrics_url]), "month")}
    assert rows["m-1"].closed == 20
    assert rows["m-3"].deviation == pytest.approx((12 - 19) / 19)
    assert rows["m-2"].overdue_rate == pytest.approx(0.44)
    assert rows["m-1"].avg_call_seconds == 1920
    assert rows["m-1"].name == "Anna"


def test_render_colours_against_the_kpi(metrics_url: str) -> None:
    screen = render(summarize(fetch([metrics_url]), "month"), "month", colour=True)
    lines = {line.split()[0]: line for line in screen.splitlines()[2:]}
    assert f"{RED}      44%" in lines["Boris"]  # 44% overdue against 20%
    assert f"{RED}     32:00" in lines["Anna"]  # 32-minute calls against 15
    assert f"{RED}     -37%" in lines["Chloe"]  # 12 deals against a team average of 19
    assert f"{GREEN}" in lines["Anna"]


def test_fetch_sums_workers_but_not_configuration(metrics_url: str) -> None:
    samples = fetch([metrics_url, metrics_url])  # the same worker twice stands in for two
    rows = {row.manager: row for row in summarize(samples, "month")}
    assert rows["m-1"].closed == 40
    assert rows["m-1"].targets["max_overdue_rate"] == 0.2


def test_cli_prints_one_screen(metrics_url: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "salespulse",
            "top",
            "--once",
            "--window",
            "month",
            "--url",
            metrics_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "salespulse — this month" in result.stdout
    assert "Boris" in result.stdout
    assert "\033[" not in result.stdout  # no colour codes when not on a terminal
