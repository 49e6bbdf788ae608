"""Interventions and KPI changes on the dashboards: Prometheus annotations that place each
marker at its series' value, filtered by the dashboard's team or manager.

The expressions themselves are checked with every other dashboard query
(test_dashboards.py: they parse, with promtool too, and name only documented
series); here, the options Grafana needs and what the filters select, on a
real Prometheus evaluating the exposition of a company file.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from metrics.exposition import StateExposition
from salespulse.settings import Intervention, KpiChange, Manager, Settings
from tests.support.dashboards import JSONObject, load_dashboards, render_expr
from tests.support.promtool import run_promtool

SALES_FLOOR = "salespulse-sales-floor"
MANAGER = "salespulse-manager"


@pytest.fixture(scope="module")
def dashboards() -> dict[str, JSONObject]:
    return load_dashboards()


def annotation_queries(dashboard: JSONObject) -> dict[str, JSONObject]:
    return {str(a["name"]): a for a in dashboard.get("annotations", {}).get("list", [])}


@pytest.mark.parametrize("uid", [SALES_FLOOR, MANAGER])
def test_interventions_and_kpi_changes_are_value_timed_prometheus_annotations(
    dashboards: dict[str, JSONObject], uid: str
) -> None:
    found = annotation_queries(dashboards[uid])
    assert set(found) == {"Interventions", "KPI changes"}
    for annotation in found.values():
        assert annotation["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert annotation["enable"] is True
        assert annotation["hide"] is False
        # Grafana reads the value as milliseconds since the epoch.
        assert annotation["useValueForTime"] is True
        assert str(annotation["expr"]).startswith("1000 * (")
        assert annotation["titleFormat"]
        assert annotation["step"] == "1h"
    assert found["Interventions"]["titleFormat"] == "{{note}}"
    variable = "$manager" if uid == MANAGER else "$team"
    assert all(variable in str(a["expr"]) for a in found.values())


def company() -> Settings:
    return Settings(
        timezone="Europe/Berlin",
        managers={
            "m-02": Manager(
                name="Sabine Krause",
                team="South",
                kpi_changes=(
                    KpiChange(since=date(2026, 12, 1), max_avg_call_duration_seconds=1320),
                ),
            ),
            "m-05": Manager(name="Markus Schulz", team="South"),
            "m-01": Manager(name="Jonas Becker", team="North"),
        },
        interventions=(
            Intervention(date=date(2026, 11, 2), manager="m-02", note="call coaching"),
            Intervention(date=date(2026, 11, 16), manager="m-01", note="task coaching"),
            Intervention(date=date(2026, 11, 23), team="South", note="new script"),
        ),
    )


def millis(day: date) -> float:
    """Midnight of *day* in Berlin (CET in November and December), in milliseconds."""
    return (datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() - 3600) * 1000


CALL_COACHING = (
    '{date="2026-11-02", manager="m-02", note="call coaching", team="South"}',
    millis(date(2026, 11, 2)),
)
TASK_COACHING = (
    '{date="2026-11-16", manager="m-01", note="task coaching", team="North"}',
    millis(date(2026, 11, 16)),
)
NEW_SCRIPT = (
    '{date="2026-11-23", note="new script", team="South"}',  # manager="" is no label
    millis(date(2026, 11, 23)),
)
CALLS_TO_22 = (
    '{kpi="max_avg_call_duration_seconds", manager="m-02", since="2026-12-01", target="1320"}',
    millis(date(2026, 12, 1)),
)


def promtool_evaluates(
    tmp_path: Path, exprs: dict[str, str], expected: dict[str, list[tuple[str, float]]]
) -> None:
    """Each expression, on one scrape of *company*'s exposition, gives exactly the
    expected samples (promtool's rule-test engine, a real PromQL evaluator)."""
    text = StateExposition(company()).text([], datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    input_series = [
        {"series": line.rsplit(" ", 1)[0], "values": line.rsplit(" ", 1)[1]}
        for line in text.splitlines()
        if line.startswith(
            (
                "salespulse_intervention_timestamp_seconds",
                "salespulse_kpi_change_timestamp_seconds",
                "salespulse_manager_info",
            )
        )
    ]
    tests = {
        "rule_files": [],
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series,
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "0m",
                        "exp_samples": [
                            {"labels": labels, "value": value} for labels, value in expected[name]
                        ],
                    }
                    for name, expr in exprs.items()
                ],
            }
        ],
    }
    path = tmp_path / "annotations.test.yml"
    path.write_text(json.dumps(tests, indent=1), encoding="utf-8")
    result = run_promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("uid", "variables", "interventions", "changes"),
    [
        (MANAGER, {"manager": "m-02"}, [CALL_COACHING, NEW_SCRIPT], [CALLS_TO_22]),
        (MANAGER, {"manager": "m-01"}, [TASK_COACHING], []),
        (MANAGER, {"manager": "m-05"}, [NEW_SCRIPT], []),
        (SALES_FLOOR, {"team": "South"}, [CALL_COACHING, NEW_SCRIPT], [CALLS_TO_22]),
        (SALES_FLOOR, {"team": "North"}, [TASK_COACHING], []),
    ],
)
def test_the_filters_select_the_markers_of_the_manager_or_team_on_screen(
    dashboards: dict[str, JSONObject],
    tmp_path: Path,
    uid: str,
    variables: dict[str, str],
    interventions: list[tuple[str, float]],
    changes: list[tuple[str, float]],
) -> None:
    found = annotation_queries(dashboards[uid])
    promtool_evaluates(
        tmp_path,
        {name: render_expr(str(a["expr"]), variables) for name, a in found.items()},
        {"Interventions": interventions, "KPI changes": changes},
    )
