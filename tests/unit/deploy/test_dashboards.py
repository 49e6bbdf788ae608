"""Grafana dashboards: the committed JSON is what the sources build, the wall screen
is readable and coloured as the department's KPIs say, and every query is sound.

No Grafana runs here, so the wall-screen check reads the JSON: refresh, panels,
units, thresholds, text sizes, variables, datasources and the grid layout.
Every PromQL expression (panel targets and query variables, collected by
``tests.support.dashboards.iter_queries``) must parse, with its Grafana variables
filled in, both with the PromQL parser of the rule tests and with ``promtool``
(missing promtool fails, unless SALESPULSE_ALLOW_MISSING_TOOLS=1), and use only
metrics the processor documents or the recording rules record.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import pytest

from deploy.grafana.build import BUILD_COMMAND, OUTPUT_DIR, drifted, rendered
from tests.support.dashboards import (
    JSONObject,
    Query,
    iter_panels,
    iter_queries,
    known_metric_names,
    load_dashboards,
    parse_query,
    query_metric_names,
    render_expr,
)
from tests.support.promtool import run_promtool

SALES_FLOOR = "salespulse-sales-floor"
MANAGER = "salespulse-manager"
PROCESSOR = "salespulse-processor"
UIDS = [SALES_FLOOR, MANAGER, PROCESSOR]

GREEN, AMBER, RED = "green", "orange", "red"


@pytest.fixture(scope="module")
def dashboards() -> dict[str, JSONObject]:
    return load_dashboards()


def panels_by_title(dashboard: JSONObject) -> dict[str, JSONObject]:
    panels = list(iter_panels(dashboard))
    by_title = {str(panel.get("title")): panel for panel in panels}
    assert len(by_title) == len(panels), f"{dashboard['uid']}: two panels share a title"
    return by_title


def defaults(panel: JSONObject) -> JSONObject:
    config: JSONObject = panel.get("fieldConfig", {}).get("defaults", {})
    return config


def steps(panel: JSONObject) -> list[tuple[float | None, str]]:
    thresholds = defaults(panel).get("thresholds", {})
    assert thresholds.get("mode") == "absolute", f"{panel['title']}: thresholds not absolute"
    return [(step["value"], step["color"]) for step in thresholds.get("steps", [])]


def exprs(panel: JSONObject) -> list[str]:
    return [str(target["expr"]) for target in panel.get("targets", [])]


def variables(dashboard: JSONObject) -> dict[str, JSONObject]:
    return {str(v["name"]): v for v in dashboard.get("templating", {}).get("list", [])}


# -- (a) drift ---------------------------------------------------------------------


def test_committed_json_is_what_the_sources_build() -> None:
    stale = drifted()
    assert not stale, (
        "dashboard JSON differs from deploy/grafana/dashboards_src: "
        + ", ".join(path.name for path in stale)
        + f"; run `{BUILD_COMMAND}` and commit the result"
    )
    for path, content in rendered().items():
        assert path.read_bytes() == content.encode("utf-8"), f"run `{BUILD_COMMAND}`"


def test_rendering_is_deterministic() -> None:
    first, second = rendered(), rendered()
    assert first == second
    for path, content in first.items():
        assert path.parent == OUTPUT_DIR
        assert content.endswith("}\n")
        assert not content.endswith("\n\n")
        assert '\n  "' in content, "2-space indent expected"


def test_every_dashboard_is_built(dashboards: dict[str, JSONObject]) -> None:
    assert sorted(dashboards) == sorted(UIDS)


# -- (b) the wall screen -----------------------------------------------------------

TEAM_AND_MANAGER_KPI_PANELS = {
    # title: (panel type, unit)
    "Team average: deals closed": ("stat", "none"),
    "Team deals closed": ("stat", "none"),
    "Team win rate": ("stat", "percentunit"),
    "Team overdue tasks": ("stat", "percentunit"),
    "Team average call": ("stat", "s"),
    "KPI alerts firing": ("stat", "none"),
    "Deals closed": ("bargauge", "none"),
    "Throughput vs team average": ("bargauge", "percentunit"),
    "Overdue tasks": ("bargauge", "percentunit"),
    "Average call": ("bargauge", "s"),
    "Team funnel": ("bargauge", "percentunit"),
    "Stage conversion by manager": ("table", "percentunit"),
    "Win rate": ("bargauge", "percentunit"),
    "Firing KPI alerts": ("table", "none"),
    "Workload and capacity": ("stat", "none"),
    "Open deals by manager and stage": ("table", "none"),
    "Tasks, last 7 days": ("table", "none"),
}
# The conversion row: overall conversion and each manager's drop step, 30 days.
CONVERSION_PANELS = {
    "Overall conversion, 30 days": ("bargauge", "percentunit"),
    "Where each funnel falls, 30 days": ("table", "percentunit"),
}
PLAN_PANELS = {
    "Plan leaderboard, this month": ("table", "percentunit"),
    "Plan by team, this month": ("table", "percentunit"),
}
# The stuck row: each manager's share of open deals stuck in their stage.
STUCK_PANELS = {
    "Stuck deals, now": ("bargauge", "percentunit"),
}
TASKS_RESULTS_PANELS = {
    "Tasks vs results, 30 days": ("stat", "none"),
    "Tasks and results by manager, 30 days": ("table", "percentunit"),
}
FILTERED_PANELS = {
    "Funnel by product and channel, 30 days": ("bargauge", "percentunit"),
    "Won value by segment, 30 days": ("table", "none"),
}


def test_sales_floor_refreshes_every_30s_over_a_day(dashboards: dict[str, JSONObject]) -> None:
    floor = dashboards[SALES_FLOOR]
    assert floor["title"] == "Sales floor"
    assert floor["refresh"] == "30s"
    assert floor["time"] == {"from": "now-24h", "to": "now"}


def test_sales_floor_has_its_panels_with_units(dashboards: dict[str, JSONObject]) -> None:
    panels = panels_by_title(dashboards[SALES_FLOOR])
    expected = {
        **TEAM_AND_MANAGER_KPI_PANELS,
        **CONVERSION_PANELS,
        **PLAN_PANELS,
        **STUCK_PANELS,
        **TASKS_RESULTS_PANELS,
        **FILTERED_PANELS,
    }
    assert set(panels) == set(expected)
    for title, (kind, unit) in expected.items():
        assert panels[title]["type"] == kind, title
        assert defaults(panels[title]).get("unit") == unit, title

    # The KPI screen (14 panels), then the rows below it: conversion, workload, tasks,
    # plans, stuck deals, tasks against results, the filtered funnel.
    assert len(panels) <= 26, "a wall screen has few panels"


def test_sales_floor_queries_the_recording_rules(dashboards: dict[str, JSONObject]) -> None:
    panels = panels_by_title(dashboards[SALES_FLOOR])
    expected = {
        "Team average: deals closed": "team_window:salespulse_throughput:avg",
        "Deals closed": "manager_window:salespulse_throughput:deals",
        "Throughput vs team average": "manager_window:salespulse_throughput_deviation:ratio",
        "Team overdue tasks": "team_window:salespulse_overdue_rate:ratio",
        "Overdue tasks": "manager_window:salespulse_overdue_rate:ratio",
        "Team average call": "team_window:salespulse_call_duration_seconds:avg",
        "Average call": "manager_window:salespulse_call_duration_seconds:avg",
        "Team win rate": "team_window:salespulse_win_rate:ratio",
        "Win rate": "manager_window:salespulse_win_rate:ratio",
        "Team funnel": "team_window_pipeline_stage:salespulse_cumulative_conversion:ratio",
        "Stage conversion by manager": (
            "manager_window_pipeline_stage:salespulse_stage_conversion:ratio"
        ),
    }
    for title, rule in expected.items():
        (expr,) = exprs(panels[title])
        assert rule in query_metric_names(expr), f"{title}: {expr}"
        assert 'window="$window"' in expr, f"{title}: {expr}"
        assert 'team="$team"' in expr, f"{title}: {expr}"
    for title in ("Firing KPI alerts", "KPI alerts firing"):
        (expr,) = exprs(panels[title])
        assert 'ALERTS{alertstate="firing", alertname=~"Salespulse.*"' in expr, title
        # The team on the screen, and alerts without a team label (absent matches "").
        assert 'team=~"$team|"' in expr, title


def test_sales_floor_conversion_row_reads_30_days_of_the_team(
    dashboards: dict[str, JSONObject],
) -> None:
    """Conversion needs more volume than a day or a week has: the row ignores the
    period variable and reads the 30-day window of the team and pipeline on screen."""
    panels = panels_by_title(dashboards[SALES_FLOOR])
    team, manager = exprs(panels["Overall conversion, 30 days"])
    assert "team_window_pipeline:salespulse_overall_conversion:ratio" in query_metric_names(team)
    assert "manager_window_pipeline:salespulse_overall_conversion:ratio" in (
        query_metric_names(manager)
    )
    drop = exprs(panels["Where each funnel falls, 30 days"])
    assert len(drop) == 3
    for expr in [team, manager, *drop]:
        assert 'window="30d"' in expr, expr
        assert 'team="$team"' in expr, expr
        assert 'pipeline="$pipeline"' in expr, expr
    for expr in drop:
        assert "manager_window_pipeline_stage:salespulse_drop_step_gap:ratio" in (
            query_metric_names(expr)
        )
        assert '"step", " → ", "previous_stage", "stage"' in expr, expr


def test_workload_shows_capacity_against_the_managers_on_the_team(
    dashboards: dict[str, JSONObject],
) -> None:
    panels = panels_by_title(dashboards[SALES_FLOOR])
    capacity = panels["Workload and capacity"]
    records = [query_metric_names(expr) for expr in exprs(capacity)]
    assert records == [
        {"team:salespulse_open_deals:sum"},
        {"team_window:salespulse_deals_created:sum"},
        {"team_window:salespulse_capacity_deals_per_manager:median"},
        {"team_window:salespulse_managers_needed:estimate"},
        {"team:salespulse_managers:count"},
        {"team_window:salespulse_managers_short:diff"},
    ]
    for expr in exprs(capacity):
        assert 'team="$team"' in expr, expr
        assert 'window="$window"' not in expr, f"capacity is over 30 days, not the period: {expr}"
    overrides = {
        override["matcher"]["options"]: {p["id"]: p["value"] for p in override["properties"]}
        for override in capacity["fieldConfig"]["overrides"]
    }
    short = overrides["short"]["thresholds"]["steps"]
    assert [step["color"] for step in short] == [GREEN, AMBER, RED]
    assert short[1]["value"] > 0
    assert short[2]["value"] == 1
    (by_stage,) = exprs(panels["Open deals by manager and stage"])
    assert {
        "manager_pipeline_stage:salespulse_open_deals:sum",
        "manager:salespulse_open_deals:sum",
    } <= query_metric_names(by_stage)


def test_tasks_show_new_completed_and_overdue_over_one_window(
    dashboards: dict[str, JSONObject],
) -> None:
    (expr,) = exprs(panels_by_title(dashboards[SALES_FLOOR])["Tasks, last 7 days"])
    assert query_metric_names(expr) == {
        "manager_window:salespulse_tasks_created:sum",
        "manager_window:salespulse_tasks_completed:sum",
        "manager_window:salespulse_tasks_completed_on_time:sum",
        "manager_window:salespulse_tasks_overdue:sum",
    }
    assert expr.count('window="7d"') == 4, "every column over the same 7 days"
    assert expr.count('team="$team"') == 4, expr


def test_plan_leaderboard_ranks_the_team_and_the_team_view_spans_the_department(
    dashboards: dict[str, JSONObject],
) -> None:
    """Plans are monthly: both panels ignore the period on screen; the leaderboard is
    the team on screen, the team view every team and the department. Beside attainment
    and pace, each shows the month's won-value forecast and its range against plan."""
    panels = panels_by_title(dashboards[SALES_FLOOR])
    board = exprs(panels["Plan leaderboard, this month"])
    teams = exprs(panels["Plan by team, this month"])
    assert len(board) == len(teams) == 6
    for expr in board:
        assert 'team="$team"' in expr, expr
    for expr in board[:3]:
        assert query_metric_names(expr) <= {
            "manager_plan:salespulse_plan_attainment:ratio",
            "manager_plan:salespulse_plan_pace_gap:ratio",
        }, expr
    for expr, stat in zip(board[3:], ("sum", "p10", "p90"), strict=True):
        assert query_metric_names(expr) == {
            f"manager:salespulse_forecast_won_amount:{stat}",
            "manager_plan:salespulse_plan_target:effective",
        }, expr
        assert 'plan="won_amount"' in expr, expr
    for expr, stat in zip(teams[3:], ("sum", "p10", "p90"), strict=True):
        assert query_metric_names(expr) == {
            f"team:salespulse_forecast_won_amount:{stat}",
            f"department:salespulse_forecast_won_amount:{stat}",
            "team_plan:salespulse_plan_target:sum",
        }, expr
    for expr in teams:
        assert "$team" not in expr, expr
        assert '"team", "Department"' in expr, expr
    for expr in [*board[:3], *teams[:3]]:
        assert "max without (plan)" in expr, expr
    for expr in [*board, *teams]:
        assert "$window" not in expr, expr
    sort = panels["Plan leaderboard, this month"]["transformations"][1]["options"]["sort"]
    assert sort == [{"field": "Value #A", "desc": True}]


def test_sales_floor_tasks_results_row_reads_the_30_day_correlation(
    dashboards: dict[str, JSONObject],
) -> None:
    """Whether tasks move results: the team's r over 30 days, and each manager's three
    figures it is computed from, which the table merges into one row per manager."""
    panels = panels_by_title(dashboards[SALES_FLOOR])
    correlation = panels["Tasks vs results, 30 days"]
    conversion_r, won_r = exprs(correlation)
    assert "team_window_pipeline:salespulse_on_time_vs_conversion:pearson_r" in (
        query_metric_names(conversion_r)
    )
    assert 'pipeline="$pipeline"' in conversion_r
    assert "team_window:salespulse_on_time_vs_deals_won:pearson_r" in query_metric_names(won_r)
    assert "review the processes" in correlation["description"]
    assert steps(correlation) == [(None, RED), (0.3, AMBER), (0.5, GREEN)]
    rows = panels["Tasks and results by manager, 30 days"]
    on_time, conversion, won = exprs(rows)
    assert "manager_window:salespulse_tasks_on_time:ratio" in query_metric_names(on_time)
    assert "manager_window_pipeline:salespulse_overall_conversion:ratio" in (
        query_metric_names(conversion)
    )
    assert "manager_window:salespulse_deals_won:sum" in query_metric_names(won)
    for expr in [conversion_r, won_r, on_time, conversion, won]:
        assert 'window="30d"' in expr, expr
        assert 'team="$team"' in expr, expr
    for expr in [on_time, conversion, won]:
        assert expr.startswith("max by (manager, name) ("), expr
    (override,) = rows["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "Deals won"}
    assert override["properties"] == [{"id": "unit", "value": "none"}]


def test_sales_floor_filters_by_product_channel_and_segment(
    dashboards: dict[str, JSONObject],
) -> None:
    """The filters list the values the team on screen has in the bounded team
    families; the filtered panels sum the selection's deals before dividing."""
    found = variables(dashboards[SALES_FLOOR])
    funnel_30d = "team_pipeline_stage_product_channel:salespulse_stage_reached:increase30d"
    won_amount = "team_pipeline_segment:salespulse_segment_won_amount:sum"
    for name, series in (("product", funnel_30d), ("channel", funnel_30d), ("segment", won_amount)):
        variable = found[name]
        assert variable["type"] == "query", name
        assert variable["query"] == f'label_values({series}{{team="$team"}}, {name})'
        assert variable["multi"] is True, name
        assert variable["includeAll"] is True, name
        assert variable["allValue"] == ".*", name
    panels = panels_by_title(dashboards[SALES_FLOOR])
    (funnel,) = exprs(panels["Funnel by product and channel, 30 days"])
    assert funnel_30d in query_metric_names(funnel)
    assert funnel.count('product=~"$product", channel=~"$channel"') == 2, funnel
    assert funnel.startswith("sum by (pipeline, stage) ("), funnel
    won, customers, per_customer = exprs(panels["Won value by segment, 30 days"])
    assert won_amount in query_metric_names(won)
    assert won.count('segment=~"$segment"') == 3, won
    assert "offset 30d" in won, won
    customers_30d = "team_window_pipeline_segment:salespulse_won_customers:sum"
    assert query_metric_names(customers) == {customers_30d}, customers
    assert query_metric_names(per_customer) == {
        customers_30d,
        "team_window_pipeline_segment:salespulse_segment_won_amount:sum",
    }, per_customer
    assert "> 0" in per_customer, per_customer  # no value where a segment has no customer
    for expr in (customers, per_customer):
        assert 'segment=~"$segment", window="30d"' in expr, expr
    for expr in (funnel, won, customers, per_customer):
        assert 'team="$team"' in expr, expr
        assert 'pipeline="$pipeline"' in expr, expr


def test_overdue_rate_is_green_amber_red_at_15_and_20_percent(
    dashboards: dict[str, JSONObject],
) -> None:
    panels = panels_by_title(dashboards[SALES_FLOOR])
    for title in ("Overdue tasks", "Team overdue tasks"):
        assert steps(panels[title]) == [(None, GREEN), (0.15, AMBER), (0.2, RED)], title
        assert defaults(panels[title])["color"]["mode"] == "thresholds", title


def test_call_duration_is_green_amber_red_at_15_and_27_minutes(
    dashboards: dict[str, JSONObject],
) -> None:
    panels = panels_by_title(dashboards[SALES_FLOOR])
    for title in ("Average call", "Team average call"):
        assert steps(panels[title]) == [(None, GREEN), (900, AMBER), (1620, RED)], title
        assert defaults(panels[title])["unit"] == "s", title


def test_throughput_deviation_is_coloured_symmetrically(dashboards: dict[str, JSONObject]) -> None:
    panel = panels_by_title(dashboards[SALES_FLOOR])["Throughput vs team average"]
    found = steps(panel)
    assert [color for _, color in found] == [RED, AMBER, GREEN, AMBER, RED]
    assert found[0][0] is None
    bounds = [value for value, _ in found[1:] if value is not None]
    # Inclusive bands: exactly ±10% is still green, exactly ±20% still amber.
    assert bounds == pytest.approx([-0.2, -0.1, 0.1, 0.2], abs=1e-6)
    assert bounds[2] > 0.1
    assert bounds[3] > 0.2

    def colour(value: float) -> str:
        return [c for bound, c in found if bound is None or value >= bound][-1]

    cases = {-0.25: RED, -0.2: AMBER, -0.15: AMBER, -0.1: GREEN, 0.0: GREEN}
    cases |= {0.1: GREEN, 0.15: AMBER, 0.2: AMBER, 0.25: RED}
    assert {value: colour(value) for value in cases} == cases


def test_stat_panels_are_big_numbers_without_sparklines(dashboards: dict[str, JSONObject]) -> None:
    for panel in iter_panels(dashboards[SALES_FLOOR]):
        options = panel.get("options", {})
        if panel["type"] == "stat":
            assert options["graphMode"] == "none", panel["title"]
            assert options["text"]["valueSize"] >= 48, panel["title"]
            assert options["text"]["titleSize"] >= 18, panel["title"]
            assert options["reduceOptions"]["calcs"] == ["lastNotNull"], panel["title"]
        elif panel["type"] == "bargauge":
            assert options["orientation"] == "horizontal", panel["title"]
            assert options["text"]["valueSize"] >= 20, panel["title"]
            assert options["text"]["titleSize"] >= 16, panel["title"]


def test_kpi_panels_have_thresholds(dashboards: dict[str, JSONObject]) -> None:
    panels = panels_by_title(dashboards[SALES_FLOOR])
    judged = {
        "Team win rate", "Team overdue tasks", "Team average call", "KPI alerts firing",
        "Throughput vs team average", "Overdue tasks", "Average call",
        "Stage conversion by manager", "Win rate",
    }  # fmt: skip
    for title in judged:
        colours = {color for _, color in steps(panels[title])}
        assert {GREEN, RED} <= colours, title


def test_sales_floor_variables(dashboards: dict[str, JSONObject]) -> None:
    found = variables(dashboards[SALES_FLOOR])
    assert {"window", "team"} <= set(found)
    window = found["window"]
    assert window["type"] == "custom"
    assert window["query"] == "day,week,month"
    assert [option["value"] for option in window["options"]] == ["day", "week", "month"]
    assert window["current"]["value"] == "week"
    team = found["team"]
    assert team["type"] == "query"
    assert team["query"] == "label_values(salespulse_manager_info, team)"
    assert team["datasource"]["uid"] == "prometheus"
    assert team["includeAll"] is False, "the wall shows one team: its averages, its managers"


def test_manager_dashboard_picks_a_manager_by_name(dashboards: dict[str, JSONObject]) -> None:
    dashboard = dashboards[MANAGER]
    manager = variables(dashboard)["manager"]
    assert "salespulse_manager_info" in manager["query"]
    assert "(?<value>" in manager["regex"]
    assert "(?<text>" in manager["regex"]
    # Grafana's query_result text of one series; labels come sorted by name.
    example = '{manager="m-01",name="Jonas Becker"} 1 1700000000000'
    pattern = manager["regex"].strip("/").replace("(?<", "(?P<")
    match = re.search(pattern, example)
    assert match is not None
    assert match.group("value") == "m-01"
    assert match.group("text") == "Jonas Becker"
    for query in iter_queries(dashboard):
        if query.panel.startswith("variable") or "$manager" not in query.expr:
            continue
        assert 'manager="$manager"' in query.expr, query


def test_processor_dashboard_covers_worker_health(dashboards: dict[str, JSONObject]) -> None:
    queries = iter_queries(dashboards[PROCESSOR])
    used = set().union(*(query_metric_names(query.expr) for query in queries))
    assert {
        "salespulse_events_total", "salespulse_events_rejected_total",
        "salespulse_consumer_lag_messages", "salespulse_newest_event_timestamp_seconds",
        "salespulse_worker_ready", "salespulse_assigned_partitions",
        "salespulse_worker_recovery_seconds", "salespulse_batches_total",
        "salespulse_changelog_records_total", "salespulse_build_info",
        "salespulse_label_overflow_total",
    } <= used  # fmt: skip


# -- every dashboard: datasource, words, layout, units -------------------------------


@pytest.mark.parametrize("uid", UIDS)
def test_every_panel_has_the_datasource_a_title_and_a_description(
    dashboards: dict[str, JSONObject], uid: str
) -> None:
    for panel in iter_panels(dashboards[uid]):
        title = panel.get("title")
        assert isinstance(title, str), f"{uid}: panel {panel.get('id')} untitled"
        assert title.strip(), f"{uid}: panel {panel.get('id')} untitled"
        description = panel.get("description")
        assert isinstance(description, str), f"{uid}: {title} has no description"
        assert len(description) >= 20, f"{uid}: {title} has no real description"
        assert panel.get("datasource") == {"type": "prometheus", "uid": "prometheus"}, title
        assert panel.get("targets"), f"{uid}: {title} has no query"
        for target in panel["targets"]:
            assert target.get("datasource", {}).get("uid") == "prometheus", title
            assert target.get("refId"), title
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"{uid}: {title} repeats a refId"
    for variable in variables(dashboards[uid]).values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "prometheus", variable["name"]


@pytest.mark.parametrize("uid", UIDS)
def test_panels_fit_the_grid_without_overlapping(
    dashboards: dict[str, JSONObject], uid: str
) -> None:
    boxes: list[tuple[str, int, int, int, int]] = []
    for panel in iter_panels(dashboards[uid]):
        grid = panel["gridPos"]
        x, y, w, h = grid["x"], grid["y"], grid["w"], grid["h"]
        assert min(w, h) >= 1, panel["title"]
        assert min(x, y) >= 0, panel["title"]
        assert x + w <= 24, f"{uid}: {panel['title']} ends at column {x + w}"
        boxes.append((panel["title"], x, y, w, h))
    for (a, ax, ay, aw, ah), (b, bx, by, bw, bh) in combinations(boxes, 2):
        apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
        assert apart, f"{uid}: '{a}' and '{b}' overlap"
    ids = [panel["id"] for panel in iter_panels(dashboards[uid])]
    assert len(ids) == len(set(ids)), f"{uid}: duplicate panel ids"


def _units(panel: JSONObject) -> set[str]:
    units = {defaults(panel).get("unit")}
    units.add(panel.get("options", {}).get("yAxis", {}).get("unit"))
    return {unit for unit in units if unit}


@pytest.mark.parametrize("uid", UIDS)
def test_ratios_are_percentunit_and_durations_seconds(
    dashboards: dict[str, JSONObject], uid: str
) -> None:
    for panel in iter_panels(dashboards[uid]):
        used = set().union(*(query_metric_names(expr) for expr in exprs(panel)))
        if any(name.endswith((":ratio", ":ratio_30d")) for name in used):
            assert _units(panel) == {"percentunit"}, panel["title"]
        elif any("seconds" in name for name in used):
            assert _units(panel) == {"s"}, panel["title"]


# -- (c) every PromQL expression -----------------------------------------------------


def all_queries() -> list[Query]:
    return [query for dashboard in load_dashboards().values() for query in iter_queries(dashboard)]


def _id(query: Query) -> str:
    return f"{query.dashboard}:{query.panel}"


def test_queries_are_collected(dashboards: dict[str, JSONObject]) -> None:
    for uid in UIDS:
        queries = iter_queries(dashboards[uid])
        panels_with_targets = [p for p in iter_panels(dashboards[uid]) if p.get("targets")]
        assert len(queries) >= len(panels_with_targets), uid
        assert all(isinstance(q, tuple) and len(q) == 3 for q in queries)
    floor = iter_queries(dashboards[SALES_FLOOR])
    assert Query(SALES_FLOOR, "variable $team", "salespulse_manager_info") in floor


@pytest.mark.parametrize("query", all_queries(), ids=_id)
def test_query_parses(query: Query) -> None:
    try:
        parse_query(query.expr)
    except ValueError as error:
        pytest.fail(f"{query.dashboard} / {query.panel}: {error}\n{query.expr}")


def test_queries_use_only_documented_metrics_and_recording_rules() -> None:
    known = known_metric_names()
    unknown = [
        f"{query.dashboard} / {query.panel}: {sorted(query_metric_names(query.expr) - known)}"
        for query in all_queries()
        if query_metric_names(query.expr) - known
    ]
    assert not unknown, (
        "queries use metrics neither README.md documents nor a recording rule records:\n"
        + "\n".join(unknown)
    )
    for query in all_queries():
        assert query_metric_names(query.expr), f"{query.dashboard} / {query.panel} selects nothing"


def test_metric_name_reader() -> None:
    expr = """
        (sum by (pipeline, le) (increase(a_bucket{x="$manager", y=~"(.*)"}[$__range])) >= 0)
      * on (pipeline) group_left (index) max by (pipeline) (b:c:d{p="$pipeline"})
      or vector(0) and time() - e offset 5m
    """
    assert query_metric_names(expr) == {"a_bucket", "b:c:d", "e"}
    broken = {
        'sum(rate(x{a="("}[5m])': "unclosed left parenthesis",
        'x{a="}"}]': "unexpected right bracket",
        "rate(x[$__range)": "inside brackets",
    }
    for text, problem in broken.items():
        with pytest.raises(ValueError, match=problem):
            parse_query(text)
    rendered_expr = render_expr('x{w="$window", m="${manager}", t=~"${team:regex}"}[$__range]')
    assert rendered_expr == 'x{w="week", m="m-01", t=~"North"}[1d]'


def _as_rule_file(queries: list[Query]) -> Iterator[str]:
    yield "groups:"
    yield "  - name: dashboard_queries"
    yield "    rules:"
    for number, query in enumerate(queries, start=1):
        yield f"      # {query.dashboard} / {query.panel}"
        yield f"      - record: dashboard_query_{number}"
        yield "        expr: |"
        for line in render_expr(query.expr).splitlines():
            yield f"          {line}"


def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    queries = all_queries()
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text("\n".join(_as_rule_file(queries)) + "\n", encoding="utf-8")
    result = run_promtool("check", "rules", "--lint=none", str(rule_file), timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool cannot parse a dashboard query:\n{output}"
    assert f"{len(queries)} rules found" in output, output
