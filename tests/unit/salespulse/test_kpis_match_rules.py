"""The wall screens' KPI formulas give the numbers the recording rules record.

A stretch of the simulated floor (three teams, into the third week of a month)
is replayed by the real processor and split between two workers by partition,
as a deployment splits it. Besides the floor: a manager with nothing this day
(active this week and month, with tasks falling due today), a configured
manager with no events at all, a manager only seen in events (no name, team
""), and a manager with KPI targets of their own.

salespulse.kpis (the formulas of ``salespulse top`` and ``salespulse wall``)
reads the two workers' expositions over HTTP, as it reads real workers.
The same expositions are the input series of a ``promtool test rules`` run of
deploy/prometheus/rules/salespulse-recording.yml (as instances w1 and w2), and
the formulas' figures are its expected samples, for every manager, team and
calendar window: throughput deviation from the team average, overdue rate,
average call, win rate, deals closed and won, the effective KPI targets they
are coloured against; per team the average throughput of active managers, the
overdue rate, the average call and the win rate. Where the formulas give no
ratio (the wall shows "—"), the rule must record none. promtool
compares float64 values exactly, and so does this test: both sides compute
each ratio with the same operations, in the same order, on the same counts.
"""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics.exposition import StateExposition
from salespulse.kpis import Figures, ManagerRow, fetch, stage_order, summarize, teams
from salespulse.settings import KpiTargets, Settings
from salespulse.simulate.month import month_events, reference_settings, replay
from streams.periods import WINDOWS
from tests.support.harness import call, deal_created, stage_changed
from tests.support.promql import RULES_DIR
from tests.support.promtool import run_promtool

END = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)  # a Thursday afternoon in Berlin
DAYS = 21.0  # from late October: the month and week windows hold less than all of it
FLOOR_MANAGERS = 12  # m-0001 ... m-0012, four to a team
OWN_TARGETS = "m-0001"
QUIET_TODAY = "m-0012"
IDLE = "m-0013"  # configured, no events
WALK_IN = "x-walk-in"  # not configured
WORKERS = ("w1", "w2")
SAMPLES = 10  # a constant value a minute for 10 minutes; the rules are read at 5m

RATIOS = {
    "manager_window:salespulse_throughput_deviation:ratio": "deviation",
    "manager_window:salespulse_overdue_rate:ratio": "overdue_rate",
    "manager_window:salespulse_call_duration_seconds:avg": "avg_call_seconds",
    "manager_window:salespulse_win_rate:ratio": "win_rate",
}
TEAM_RATIOS = {
    "team_window:salespulse_throughput:avg": "average",
    "team_window:salespulse_overdue_rate:ratio": "overdue_rate",
    "team_window:salespulse_call_duration_seconds:avg": "avg_call_seconds",
    "team_window:salespulse_win_rate:ratio": "win_rate",
}
# Counts top shows as 0 where the rules may record 0 or nothing: compared where not 0.
COUNTS = {
    "manager_window:salespulse_throughput:deals": "closed",
    "manager_window:salespulse_deals_won:sum": "won",
}
TARGETS = "manager_kpi:salespulse_kpi_target:effective"
STEPS: dict[str, list[tuple[str, str]]] = {}


def company() -> Settings:
    settings = reference_settings(FLOOR_MANAGERS + 1)
    managers = dict(settings.managers)
    own = KpiTargets(max_overdue_rate=0.3, max_avg_call_duration_seconds=1620)
    managers[OWN_TARGETS] = managers[OWN_TARGETS].model_copy(update={"kpi": own})
    assert IDLE in managers
    return settings.model_copy(update={"managers": managers})


def events(settings: Settings) -> list[dict[str, Any]]:
    """The floor's events without the idle manager's, and without the quiet manager's
    since midnight; then a walk-in's deal won and call, this afternoon."""
    midnight = END.astimezone(settings.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    kept = [
        event
        for event in month_events(settings, end=END, days=DAYS)
        if event["manager_id"] != IDLE
        and not (
            event["manager_id"] == QUIET_TODAY
            and datetime.fromisoformat(event["occurred_at"]) >= midnight
        )
    ]
    at = END - timedelta(hours=2)
    return [
        *kept,
        deal_created(WALK_IN, "walk-in-1", at),
        stage_changed(WALK_IN, "walk-in-1", "won", at + timedelta(minutes=20)),
        call(WALK_IN, "walk-in-call-1", 300, at + timedelta(minutes=5)),
    ]


@pytest.fixture(scope="module")
def expositions() -> dict[str, str]:
    """Each worker's /metrics text."""
    settings = company()
    store = replay(settings, events(settings), now=END)
    exposition = StateExposition(settings)
    partitions = range(settings.partitions)
    shares = {
        worker: {p for p in partitions if p % len(WORKERS) == index}
        for index, worker in enumerate(WORKERS)
    }
    texts = {worker: exposition.text(store.records(share), END) for worker, share in shares.items()}
    for worker, text in texts.items():
        assert "salespulse_period_deals_closed{" in text, f"{worker} has no managers"
    return texts


@pytest.fixture(scope="module")
def rows(expositions: dict[str, str]) -> Iterator[dict[str, dict[str, ManagerRow]]]:
    """The formulas' rows per window and manager, read from the workers over HTTP."""
    bodies = {f"/{worker}/metrics": text.encode() for worker, text in expositions.items()}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        samples = fetch([f"http://127.0.0.1:{port}{path}" for path in bodies])
        yield {
            window: {row.manager: row for row in summarize(samples, window)} for window in WINDOWS
        }
        # The funnel order for team figures: the same for every worker.
        STEPS.update(stage_order(samples))
    finally:
        server.shutdown()
        thread.join()


# -- the promtool test ------------------------------------------------------------------


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"not a count: {value}")
    return repr(float(value))


def _series(name: str, labels: Mapping[str, str]) -> str:
    """``name{label="value", ...}``; JSON's string escapes are Go's for these values."""
    inner = ", ".join(f"{label}={json.dumps(value)}" for label, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def input_series(texts: Mapping[str, str]) -> list[dict[str, str]]:
    """Every sample of every worker, as that worker's series held constant."""
    found = []
    for worker, text in texts.items():
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = {**sample.labels, "instance": f"{worker}:9820", "job": "salespulse"}
                found.append(
                    {
                        "series": _series(sample.name, labels),
                        "values": f"{_number(sample.value)}x{SAMPLES}",
                    }
                )
    return found


def expected_per_window(rows: Mapping[str, Mapping[str, ManagerRow]]) -> list[dict[str, Any]]:
    """Each ratio where top shows one, and nowhere else; each count where it is not 0."""
    cases = []
    for window, by_manager in rows.items():
        for name, field in {**RATIOS, **COUNTS}.items():
            samples = []
            for row in by_manager.values():
                value = getattr(row, field)
                if value is None or (name in COUNTS and value == 0):
                    continue  # top shows "—" (or 0): the rule records nothing (or 0)
                labels = {"manager": row.manager, "name": row.name, "team": row.team}
                samples.append(
                    {"labels": _series(name, {**labels, "window": window}), "value": value}
                )
            selector = f'{name}{{window="{window}"}}'
            expr = f"{selector} > 0" if name in COUNTS else selector
            cases.append({"expr": expr, "eval_time": "5m", "exp_samples": samples})
    return cases


def team_figures(rows: Mapping[str, Mapping[str, ManagerRow]]) -> dict[str, list[Figures]]:
    return {window: teams(list(by_manager.values()), STEPS) for window, by_manager in rows.items()}


def expected_per_team(rows: Mapping[str, Mapping[str, ManagerRow]]) -> list[dict[str, Any]]:
    """Each team ratio where the formulas give one, and nowhere else."""
    cases = []
    for window, figures in team_figures(rows).items():
        for name, field in TEAM_RATIOS.items():
            samples = [
                {
                    "labels": _series(name, {"team": team.name, "window": window}),
                    "value": getattr(team, field),
                }
                for team in figures
                if getattr(team, field) is not None
            ]
            cases.append(
                {"expr": f'{name}{{window="{window}"}}', "eval_time": "5m", "exp_samples": samples}
            )
    return cases


def expected_targets(rows: Mapping[str, ManagerRow]) -> dict[str, Any]:
    samples = [
        {"labels": _series(TARGETS, {"manager": row.manager, "kpi": kpi}), "value": value}
        for row in rows.values()
        for kpi, value in row.targets.items()
    ]
    return {"expr": TARGETS, "eval_time": "5m", "exp_samples": samples}


def test_the_formulas_give_what_the_recording_rules_record(
    expositions: dict[str, str], rows: dict[str, dict[str, ManagerRow]], tmp_path: Path
) -> None:
    test = {
        "rule_files": [str(RULES_DIR / "salespulse-recording.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "the KPI formulas and the recording rules on one scrape of two workers",
                "interval": "1m",
                "input_series": input_series(expositions),
                "promql_expr_test": [
                    *expected_per_window(rows),
                    *expected_per_team(rows),
                    expected_targets(rows["month"]),
                ],
            }
        ],
    }
    path = tmp_path / "kpis-vs-rules.test.yml"  # JSON is YAML
    path.write_text(json.dumps(test, indent=1), encoding="utf-8")
    result = run_promtool("test", "rules", str(path), timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"the formulas and the recording rules disagree:\n{output[-20000:]}"
    )


def test_the_scrape_has_the_cases_that_tell_definitions_apart(
    rows: dict[str, dict[str, ManagerRow]],
) -> None:
    day, month = rows["day"], rows["month"]
    quiet = day[QUIET_TODAY]
    assert quiet.deviation is None, "inactive today: not in the team average"
    assert quiet.overdue_rate is not None, "its tasks still fall due today"
    assert month[QUIET_TODAY].deviation is not None
    idle = month[IDLE]
    assert (idle.deviation, idle.overdue_rate, idle.avg_call_seconds) == (None, None, None)
    walk_in = month[WALK_IN]
    assert (walk_in.name, walk_in.team, walk_in.closed) == (WALK_IN, "", 1)
    assert walk_in.avg_call_seconds == 300
    assert month[OWN_TARGETS].targets["max_overdue_rate"] == 0.3
    assert month["m-0002"].targets["max_overdue_rate"] == 0.2
    for window, by_manager in rows.items():
        deviations = [row.deviation for row in by_manager.values() if row.deviation is not None]
        assert len(deviations) >= FLOOR_MANAGERS - 1, window
        assert any(value != 0 and value != round(value) for value in deviations), window
        overdue = [row.overdue_rate for row in by_manager.values() if row.overdue_rate]
        calls = [row.avg_call_seconds for row in by_manager.values() if row.avg_call_seconds]
        assert len(overdue) >= FLOOR_MANAGERS // 2, f"{window}: few overdue rates"
        assert len(calls) >= FLOOR_MANAGERS, f"{window}: few average calls"
        wins = [row.win_rate for row in by_manager.values() if row.win_rate is not None]
        assert len(wins) >= FLOOR_MANAGERS // 2, f"{window}: few win rates"
    for window, of_teams in team_figures(rows).items():
        named = [team for team in of_teams if team.name]
        assert len(named) == 3, window
        for team in named:
            figures_of_team = (
                team.average,
                team.overdue_rate,
                team.avg_call_seconds,
                team.win_rate,
            )
            assert None not in figures_of_team, (window, team)
