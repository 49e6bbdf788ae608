"""The seed's call story, replayed as raw events and read back by ``salespulse report``.

A manager whose calls averaged 32 minutes and who closed 23 deals in the four
weeks before a KPI change (27 → 22 minutes) calls for 23 minutes and closes 31
in the four weeks after, converting the same share of deals and selling 15.9%
more. The events go through the real processor with time driven by the events
(and the wall-clock sweep at each hour, as a caught-up worker runs it); the
exposition of every hour of event time is backfilled into a real Prometheus
with ``promtool tsdb create-blocks-from openmetrics``; the report's command
reads the numbers back from Prometheus's HTTP API.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from metrics.exposition import StateExposition
from salespulse.cli import main
from salespulse.report.build import changes, measure
from salespulse.report.prometheus import Prometheus as PrometheusApi
from salespulse.settings import load_settings
from schemas.events import TOPIC_OF_TYPE
from streams.processor import Processor
from tests.support.harness import (
    TOPICS,
    Harness,
    call,
    deal_created,
    stage_changed,
    task_completed,
    task_created,
)
from tests.support.monitoring import Prometheus

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
CHANGE = date(2026, 11, 2)  # a Monday; summer time ended eight days before
WEEK = timedelta(weeks=1)
BEFORE = datetime(2026, 10, 5, tzinfo=BERLIN)
AFTER = datetime(2026, 11, 2, tzinfo=BERLIN)
END = datetime(2026, 11, 30, tzinfo=BERLIN)
COMPANY = """
timezone = "Europe/Berlin"

[managers.m-02]
name = "Sabine Krause"
team = "South"
kpi = { max_avg_call_duration_seconds = 1620 }

[[managers.m-02.kpi_changes]]
since = 2026-11-02
max_avg_call_duration_seconds = 1320
"""
# Only what the report reads is backfilled.
REPORTED = (
    "salespulse_deals_closed_total",
    "salespulse_deals_won_amount_total",
    "salespulse_funnel_stage_reached_total",
    "salespulse_tasks_overdue_total",
    "salespulse_tasks_deadline_passed_total",
    "salespulse_calls_total",
    "salespulse_call_duration_seconds_total",
    "salespulse_funnel_stage_info",
    "salespulse_manager_info",
)


def spread(start: datetime, count: int, span: timedelta) -> Iterator[datetime]:
    """*count* moments evenly over *span* from *start*, none on a week boundary."""
    step = span / count
    for n in range(count):
        yield start + timedelta(hours=5) + n * step


def side(
    start: datetime,
    tag: str,
    *,
    created: int,
    won: int,
    lost: int,
    amount: float,
    call_seconds: int,
    answered: int,
    tasks: int,
    overdue: int,
) -> list[dict[str, Any]]:
    """Four weeks of one manager's events from *start* (local midnight, a Monday)."""
    events: list[dict[str, Any]] = []
    span = 4 * WEEK - timedelta(days=1)
    for n, at in enumerate(spread(start, created, span)):
        deal = f"{tag}-D{n}"
        events.append(deal_created("m-02", deal, at, amount=amount))
        if n < won + lost:
            outcome = "won" if n < won else "lost"
            events.append(stage_changed("m-02", deal, outcome, at + timedelta(hours=1)))
    for n, at in enumerate(spread(start, answered, span)):
        events.append(call("m-02", f"{tag}-C{n}", call_seconds, at + timedelta(minutes=20)))
        events.append(call("m-02", f"{tag}-U{n}", 0, at + timedelta(minutes=50)))  # no answer
    for n, at in enumerate(spread(start, tasks, span)):
        task, due = f"{tag}-T{n}", at + timedelta(hours=12)
        events.append(task_created("m-02", task, "call", at, due))
        done = due + timedelta(hours=2) if n < overdue else at + timedelta(hours=2)
        events.append(task_completed("m-02", task, done))
    return events


def story() -> list[dict[str, Any]]:
    # Conversion 10/40 = 12/48 = 25%; won value 12 * 1159 = 1.159 * (10 * 1200).
    before = side(
        BEFORE, "b", created=40, won=10, lost=13, amount=1200.0, call_seconds=32 * 60,
        answered=40, tasks=25, overdue=11,
    )  # fmt: skip
    after = side(
        AFTER, "a", created=48, won=12, lost=19, amount=1159.0, call_seconds=23 * 60,
        answered=40, tasks=20, overdue=3,
    )  # fmt: skip
    return sorted(before + after, key=lambda event: event["occurred_at"])


def replay(tmp_path: Path) -> Path:
    """Every hour of event time as OpenMetrics with timestamps, one series after another."""
    harness = Harness()
    harness.settings = load_settings(config=write_company(tmp_path))
    now = [BEFORE - timedelta(hours=1)]
    harness.processor = Processor(harness.settings, harness.store, clock=lambda: now[0])
    exposition = StateExposition(harness.settings)
    series: dict[str, list[str]] = {}

    def render(at: datetime) -> None:
        harness.processor.tick({0}, at.timestamp())  # the caught-up worker's deadline sweep
        harness.persist()
        for line in exposition.text(harness.store.records(), at).splitlines():
            if line.startswith(REPORTED):
                text, value = line.rsplit(" ", 1)
                series.setdefault(text, []).append(f"{value} {at.timestamp():.0f}")

    instant = now[0]
    for event in story():
        at = datetime.fromisoformat(event["occurred_at"])
        while instant <= at:
            now[0] = instant
            render(instant)
            instant += timedelta(hours=1)
        now[0] = at
        topic = TOPICS[TOPIC_OF_TYPE[event["type"]]]
        assert harness.run(topic, [harness.message(topic, event)]) == []
    while instant <= END + timedelta(hours=1):
        now[0] = instant
        render(instant)
        instant += timedelta(hours=1)
    source = tmp_path / "history.om"
    with source.open("w", encoding="utf-8") as out:
        for text in sorted(series):
            out.writelines(f"{text} {sample}\n" for sample in series[text])
        out.write("# EOF\n")
    return source


def write_company(tmp_path: Path) -> Path:
    path = tmp_path / "company.toml"
    path.write_text(COMPANY, encoding="utf-8")
    return path


def test_the_report_reads_the_call_story_back_from_prometheus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = replay(tmp_path)
    data = tmp_path / "data"
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from", "openmetrics",
         str(source), str(data)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    prometheus = Prometheus(tmp_path, [], None, data, flags=["--storage.tsdb.retention.time=100y"])
    try:
        url = f"http://127.0.0.1:{prometheus.port}"
        settings = load_settings(config=tmp_path / "company.toml")
        (change,) = changes(settings)
        assert change.day == CHANGE
        report = measure(PrometheusApi(url), change, 4, settings)
        before, after = report.before, report.after
        assert (before["average_call"], after["average_call"]) == (32.0, 23.0)
        assert (before["throughput"], after["throughput"]) == (23.0, 31.0)
        assert before["conversion"] == after["conversion"] == 0.25
        assert report.percent("conversion") == 0.0
        assert (before["won_value"], after["won_value"]) == (12000.0, 13908.0)
        assert round(report.percent("won_value") or 0, 6) == 15.9
        assert (before["overdue_rate"], after["overdue_rate"]) == (0.44, 0.15)
        assert len(report.weekly) == 8
        assert sum(week["throughput"] or 0 for week in report.weekly[:4]) == 23

        page = tmp_path / "report.html"
        argv = ["report", "interventions", "--prometheus", url, "--config"]
        assert main([*argv, str(tmp_path / "company.toml"), "--out", str(page)]) == 0
        table = capsys.readouterr().out
        assert "32.0 min" in table
        assert "23.0 min" in table
        assert "+15.9%" in table
        assert "25.0%" in table
        html = page.read_text(encoding="utf-8")
        assert html.count("<svg") == 5
        assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    finally:
        prometheus.stop()
