"""Manager: one manager's drill-down, for the team lead's one-to-one.

The top row is the manager "now" in the chosen period (recording rules, instant);
the charts below follow the dashboard's time range: period numbers over time
(they restart at every period boundary), and all-history counters as increases
over the range. A manager's own series carry no product, channel, segment,
task type or histogram bucket (the metrics budget): distributions (time in
stage, sales cycle, call lengths), regulations by stage and segments are
shown for the manager's team, from the recorded team sums (a team's series of
one worker fall when a partition moves away; the sums do not).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import heatmap
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

from . import common as c

UID = "salespulse-manager"
TITLE = "Manager"

M = 'manager="$manager"'
MW = c.MANAGER_WINDOW
MP = 'manager="$manager", pipeline="$pipeline"'
# The manager's own team, for "team average" lines: keeps the team series whose
# team equals the manager's (unconfigured managers have team "").
OWN_TEAM = 'and on (team) salespulse_manager_info{manager="$manager"}'
PIPELINE = 'pipeline="$pipeline"'


def _stats() -> list[c.PanelBuilder]:
    top = 0
    height = 5
    return [
        c.stat_panel(
            "Deals closed",
            "Deals this manager closed (won + lost) in the chosen period.",
            [c.query(f"manager_window:salespulse_throughput:deals{{{MW}}}", "deals", instant=True)],
            unit=c.COUNT,
            decimals=0,
            place=c.at(0, top, 4, height),
        ),
        c.stat_panel(
            "vs team average",
            "Deals closed compared with the team's average per active manager in the "
            "period: 0% is the average. Green within ±10%, amber within ±20%, red beyond.",
            [
                c.query(
                    f"manager_window:salespulse_throughput_deviation:ratio{{{MW}}}",
                    "deviation",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.DEVIATION,
            place=c.at(4, top, 4, height),
        ),
        c.stat_panel(
            "Win rate",
            "Won / (won + lost) over the deals closed in the period. Red below 20%, "
            "amber below 25% (the win-rate KPI), green from 25%.",
            [
                c.query(
                    f"manager_window:salespulse_win_rate:ratio{{{MW}}}", "win rate", instant=True
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.WIN_RATE,
            place=c.at(8, top, 4, height),
        ),
        c.stat_panel(
            "Overdue tasks",
            "Of the tasks due in the period whose deadline has passed, the share that "
            "became overdue. Green below 15%, amber from 15%, red from 20% (the team "
            "KPI; the manager's own KPI is the dashed line in 'Overdue tasks vs KPI').",
            [
                c.query(
                    f"manager_window:salespulse_overdue_rate:ratio{{{MW}}}", "overdue", instant=True
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.OVERDUE_RATE,
            place=c.at(12, top, 4, height),
        ),
        c.stat_panel(
            "Average call",
            "Talk time / answered calls in the period. Green below 15 min, amber below "
            "27 min, red from 27 min (the manager's own KPI is the dashed line in "
            "'Average call vs KPI').",
            [
                c.query(
                    f"manager_window:salespulse_call_duration_seconds:avg{{{MW}}}",
                    "average call",
                    instant=True,
                )
            ],
            unit=c.SECONDS,
            decimals=1,
            thresholds=c.CALL_DURATION,
            place=c.at(16, top, 4, height),
        ),
        c.stat_panel(
            "Regulation compliance",
            "Stage regulations met / (met + missed) in the period: entering a stage "
            "obliges a task of a given type, due soon enough. Red below 90% (the KPI), "
            "amber below 95%.",
            [
                c.query(
                    f"manager_window:salespulse_regulation_compliance:ratio{{{MW}}}",
                    "compliance",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.COMPLIANCE,
            place=c.at(20, top, 4, height),
        ),
    ]


def _throughput_and_funnel() -> list[c.PanelBuilder]:
    top = 5
    height = 9
    period_pipeline = f'{MW}, pipeline="$pipeline"'
    return [
        c.timeseries_panel(
            "Deals closed vs team average",
            "Deals closed in the current period as the time range moves on, against the "
            "team's average per active manager. Both restart at each period boundary "
            "(midnight, Monday, the 1st).",
            [
                c.query(f"manager_window:salespulse_throughput:deals{{{MW}}}", "{{name}}"),
                c.query(
                    f'team_window:salespulse_throughput:avg{{window="$window"}} {OWN_TEAM}',
                    "team average ({{team}})",
                    "B",
                ),
            ],
            unit=c.COUNT,
            stepped=True,
            place=c.at(0, top, 12, height),
        ).override_by_query("B", c.average_line()),
        c.bar_gauge_panel(
            "Deals reached per stage",
            "Deals that reached each funnel stage in the period, in funnel order; a deal "
            "counts once per stage, skipped stages count as passed.",
            [
                c.instant_table(
                    c.by_funnel_index(
                        f"manager_window_pipeline_stage:salespulse_stage_reached:sum{{{period_pipeline}}}"
                    )
                )
            ],
            unit=c.COUNT,
            decimals=0,
            rows=True,
            transformations=c.funnel_rows(["stage", "Value"]),
            place=c.at(12, top, 6, height),
        ),
        c.bar_gauge_panel(
            "Stage conversion",
            "For each stage, the share of the deals that reached the previous stage in "
            "the period which also reached this one. Red below 30% (the stage-conversion "
            "KPI).",
            [
                c.instant_table(
                    c.by_funnel_index(
                        "manager_window_pipeline_stage:salespulse_stage_conversion:ratio"
                        f"{{{period_pipeline}}}"
                    )
                )
            ],
            unit=c.RATIO,
            decimals=0,
            rows=True,
            max_value=1,
            thresholds=c.STAGE_CONVERSION,
            transformations=c.funnel_rows(["stage", "Value"]),
            place=c.at(18, top, 6, height),
        ),
    ]


def _team_quantile(q: float, buckets: str, selector: str, by: str) -> str:
    """The q-quantile of the manager's team's observations in the time range, from a
    recorded team bucket sum; empty ranges (NaN) are dropped."""
    return (
        f"histogram_quantile({q}, sum by ({by}) (\n"
        f"  increase({buckets}{{{selector}}}[$__range])\n  {OWN_TEAM}\n)) >= 0"
    )


def _average(summary: str, selector: str, by: str) -> str:
    """The manager's average observation in the time range, from its sum and count."""
    return (
        f"sum by ({by}) (increase({summary}_sum{{{selector}}}[$__range]))\n"
        f"/ (sum by ({by}) (increase({summary}_count{{{selector}}}[$__range])) > 0)"
    )


def _stages_and_tasks() -> list[c.PanelBuilder]:
    top = 14
    height = 9
    stage_duration = "salespulse_deal_stage_duration_seconds"
    stage_buckets = "team_pipeline_stage_le:salespulse_deal_stage_duration_seconds_bucket:sum"
    cycle = "salespulse_deal_sales_cycle_seconds"
    cycle_buckets = "team_pipeline_le:salespulse_deal_sales_cycle_seconds_bucket:sum"
    checks = "team_pipeline_stage_result:salespulse_regulation_checks:sum"
    regulation_all = f"increase({checks}{{{PIPELINE}}}[$__range])\n  {OWN_TEAM}"
    regulation_met = f'increase({checks}{{{PIPELINE}, result="met"}}[$__range])\n  {OWN_TEAM}'
    return [
        c.table_panel(
            "Time in stage",
            "How long deals stayed in each stage before leaving it, over the dashboard's "
            "time range, in funnel order: this manager's average, and the median and 90th "
            "percentile of the manager's team.",
            [
                c.instant_table(
                    c.by_funnel_index(f"({_average(stage_duration, MP, 'pipeline, stage')})"),
                    "A",
                ),
                c.instant_table(
                    c.by_funnel_index(
                        f"({_team_quantile(0.5, stage_buckets, PIPELINE, 'pipeline, stage, le')})"
                    ),
                    "B",
                ),
                c.instant_table(
                    c.by_funnel_index(
                        f"({_team_quantile(0.9, stage_buckets, PIPELINE, 'pipeline, stage, le')})"
                    ),
                    "C",
                ),
            ],
            unit=c.SECONDS,
            transformations=[
                c.transformation("merge", {}),
                *c.sort_rows("index", numeric=True),
                c.organize(
                    exclude=["Time", "index", "pipeline"],
                    rename={
                        "stage": "Stage",
                        "Value #A": "Average",
                        "Value #B": "Team median",
                        "Value #C": "Team 90th percentile",
                    },
                ),
            ],
            place=c.at(0, top, 8, height),
        ),
        c.stat_panel(
            "Sales cycle",
            "Creation to won, over the deals won in the dashboard's time range: this "
            "manager's average, and the median and 90th percentile of the manager's team.",
            [
                c.query(_average(cycle, M, "manager"), "average", instant=True),
                c.query(
                    _team_quantile(0.5, cycle_buckets, PIPELINE, "le"),
                    "team median",
                    "B",
                    instant=True,
                ),
                c.query(
                    _team_quantile(0.9, cycle_buckets, PIPELINE, "le"),
                    "team 90th percentile",
                    "C",
                    instant=True,
                ),
            ],
            unit=c.SECONDS,
            decimals=1,
            value_size=32,
            title_size=16,
            text_mode=common_models.BigValueTextMode.VALUE_AND_NAME,
            place=c.at(8, top, 4, height),
        ),
        c.stat_panel(
            "Tasks",
            "Tasks due in the period whose deadline has passed, those of them that became "
            "overdue, tasks completed on time in the period, and the open and open overdue "
            "tasks right now.",
            [
                c.query(
                    f"manager_window:salespulse_tasks_deadline_passed:sum{{{MW}}}",
                    "deadline passed",
                    instant=True,
                ),
                c.query(
                    f"manager_window:salespulse_tasks_overdue:sum{{{MW}}}",
                    "overdue",
                    "B",
                    instant=True,
                ),
                c.query(
                    f'sum(salespulse_period_tasks_completed{{{MW}, on_time="true"}}) or vector(0)',
                    "completed on time",
                    "C",
                    instant=True,
                ),
                c.query(f"sum(salespulse_open_tasks{{{M}}})", "open now", "D", instant=True),
                c.query(
                    f"sum(salespulse_open_tasks_overdue{{{M}}})",
                    "open overdue now",
                    "E",
                    instant=True,
                ),
            ],
            unit=c.COUNT,
            decimals=0,
            value_size=32,
            title_size=16,
            text_mode=common_models.BigValueTextMode.VALUE_AND_NAME,
            place=c.at(12, top, 6, height),
        ),
        c.bar_gauge_panel(
            "Team regulation compliance by stage",
            "Per stage, for the manager's team, regulations met / (met + missed) whose "
            "deadline passed in the dashboard's time range: did entering the stage get its "
            "required task in time? Red below 90% (the KPI), amber below 95%.",
            [
                c.instant_table(
                    c.by_funnel_index(
                        f"(\n  sum by (pipeline, stage) ({regulation_met})\n"
                        f"  or 0 * sum by (pipeline, stage) ({regulation_all})\n)\n"
                        f"/ (sum by (pipeline, stage) ({regulation_all}) > 0)"
                    )
                )
            ],
            unit=c.RATIO,
            decimals=0,
            rows=True,
            max_value=1,
            thresholds=c.COMPLIANCE,
            transformations=c.funnel_rows(["stage", "Value"]),
            place=c.at(18, top, 6, height),
        ),
    ]


def _calls() -> list[c.PanelBuilder]:
    top = 23
    height = 9
    call_length = (
        heatmap.Panel()
        .title("Team call length distribution")
        .description(
            "How many of the manager's team's answered calls fell into each length band "
            "(1, 2, 5, 10, 15, 20, 22, 25, 27, 30, 45, 60 min), over time. Darker is more "
            "calls. The manager's own average is beside it."
        )
        .datasource(c.datasource())
        .targets(
            [
                c.query(
                    "sum by (le) (\n  increase(team_direction_le:"
                    "salespulse_answered_call_duration_seconds_bucket:sum[$__interval])\n"
                    f"  {OWN_TEAM}\n)",
                    "{{le}}",
                    fmt=prometheus_models.PromQueryFormat.HEATMAP,
                    interval="15m",
                )
            ]
        )
        .grid_pos(c.at(14, top, 10, height))
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit(c.SECONDS).decimals(0))
        .cell_values(heatmap.CellValues().unit(c.COUNT).decimals(0))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(heatmap_models.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(heatmap_models.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
        )
        .show_legend()
        .show_y_histogram()
    )
    return [
        c.timeseries_panel(
            "Average call vs KPI",
            "Average answered call in the current period as the time range moves on, "
            "the team's average, and this manager's own KPI (dashed red).",
            [
                c.query(f"manager_window:salespulse_call_duration_seconds:avg{{{MW}}}", "{{name}}"),
                c.query(
                    'team_window:salespulse_call_duration_seconds:avg{window="$window"}\n'
                    + OWN_TEAM,
                    "team average ({{team}})",
                    "B",
                ),
                c.query(
                    "manager_kpi:salespulse_kpi_target:effective"
                    f'{{kpi="max_avg_call_duration_seconds", {M}}}',
                    "KPI",
                    "C",
                ),
            ],
            unit=c.SECONDS,
            thresholds=c.CALL_DURATION,
            place=c.at(0, top, 10, height),
        )
        .override_by_query("B", c.average_line())
        .override_by_query("C", c.target_line()),
        c.stat_panel(
            "Calls",
            "Calls this manager ended in the period, and how many of them were answered.",
            [
                c.query(f"sum(salespulse_period_calls{{{MW}}})", "all calls", instant=True),
                c.query(
                    f"manager_window:salespulse_calls_answered:sum{{{MW}}}",
                    "answered",
                    "B",
                    instant=True,
                ),
            ],
            unit=c.COUNT,
            decimals=0,
            value_size=40,
            title_size=18,
            text_mode=common_models.BigValueTextMode.VALUE_AND_NAME,
            place=c.at(10, top, 4, height),
        ),
        call_length,
    ]


def _discipline_and_segments() -> list[c.PanelBuilder]:
    top = 32
    height = 9
    segments = "team_pipeline_segment_outcome:salespulse_segment_deals_closed:sum"
    all_closed = f"increase({segments}[$__range]) {OWN_TEAM}"
    won_closed = f'increase({segments}{{outcome="won"}}[$__range]) {OWN_TEAM}'
    won_amount = "team_pipeline_segment:salespulse_segment_won_amount:sum"
    return [
        c.timeseries_panel(
            "Overdue tasks vs KPI",
            "Of the tasks due in the current period whose deadline has passed, the share "
            "that became overdue, as the time range moves on, the team's rate, and this "
            "manager's own KPI (dashed red).",
            [
                c.query(f"manager_window:salespulse_overdue_rate:ratio{{{MW}}}", "{{name}}"),
                c.query(
                    f'team_window:salespulse_overdue_rate:ratio{{window="$window"}} {OWN_TEAM}',
                    "team ({{team}})",
                    "B",
                ),
                c.query(
                    f'manager_kpi:salespulse_kpi_target:effective{{kpi="max_overdue_rate", {M}}}',
                    "KPI",
                    "C",
                ),
            ],
            unit=c.RATIO,
            thresholds=c.OVERDUE_RATE,
            place=c.at(0, top, 8, height),
        )
        .override_by_query("B", c.average_line())
        .override_by_query("C", c.target_line()),
        c.bar_gauge_panel(
            "Team won amount by segment",
            "Value of the deals the manager's team won in the dashboard's time range, by "
            "market segment, largest first (in the CRM's currency).",
            [
                c.query(
                    f"sort_desc(sum by (segment) (increase({won_amount}[$__range]) {OWN_TEAM}))",
                    "{{segment}}",
                    instant=True,
                )
            ],
            unit=c.COUNT,
            decimals=0,
            place=c.at(8, top, 8, height),
        ),
        c.bar_gauge_panel(
            "Team win rate by segment",
            "Won / (won + lost) by market segment over the deals the manager's team closed "
            "in the dashboard's time range. Red below 20%, amber below 25%, green from 25%.",
            [
                c.query(
                    f"(\n  sum by (segment) ({won_closed})\n"
                    f"  or 0 * sum by (segment) ({all_closed})\n)\n"
                    f"/ (sum by (segment) ({all_closed}) > 0)",
                    "{{segment}}",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            max_value=1,
            thresholds=c.WIN_RATE,
            place=c.at(16, top, 8, height),
        ),
    ]


# Share of new tasks meeting their description standard; share of a check failing.
DESCRIPTIONS_MEETING = c.Thresholds(c.RED, ((0.70, c.AMBER), (0.85, c.GREEN)))
CHECK_FAILING = c.Thresholds(c.GREEN, ((0.10, c.AMBER), (0.25, c.RED)))


def _task_descriptions() -> list[c.PanelBuilder]:
    """Are the manager's tasks written well, and what do the team's tasks lack?"""
    top = 41
    height = 9
    thirty_days = 'window="30d"'
    return [
        c.timeseries_panel(
            "Tasks meeting the description standard, 30 days",
            "Of the new tasks held to a description standard (the company file's "
            "[task_standards]) in the last 30 days, the share whose every check passed: "
            "brief, a concrete method, a link where needed, nothing left unfilled, due "
            "within the stage regulation. The team's share dashed.",
            [
                c.query(
                    "manager_window:salespulse_task_descriptions_meeting:ratio"
                    f"{{{M}, {thirty_days}}}",
                    "{{name}}",
                ),
                c.query(
                    f"team_window:salespulse_task_descriptions_meeting:ratio{{{thirty_days}}} "
                    f"{OWN_TEAM}",
                    "team ({{team}})",
                    "B",
                ),
            ],
            unit=c.RATIO,
            thresholds=DESCRIPTIONS_MEETING,
            place=c.at(0, top, 8, height),
        ).override_by_query("B", c.average_line()),
        c.bar_gauge_panel(
            "Team task descriptions: checks failed, 30 days",
            "For the manager's team, of the new tasks of each type a check applied to in "
            "the last 30 days, the share that failed it, worst first: brief (too many "
            "words), method (none named), link (missing), filled (a template placeholder "
            "left), deadline (later than the stage regulation allows).",
            [
                c.query(
                    "sort_desc(team_window_task_type_check:"
                    f"salespulse_task_description_checks_failed:ratio{{{thirty_days}}} "
                    f"{OWN_TEAM})",
                    "{{task_type}}: {{check}}",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            max_value=1,
            thresholds=CHECK_FAILING,
            value_size=18,
            title_size=14,
            place=c.at(8, top, 16, height),
        ),
    ]


def build() -> dashboard_models.Dashboard:
    builder = (
        c.base_dashboard(
            UID,
            TITLE,
            "One manager against the KPIs: throughput, funnel, time in stage, tasks and "
            "regulations, calls, segments. Pick the manager (by name) at the top.",
            refresh="1m",
            time_from="now-7d",
        )
        .with_variable(c.window_variable())
        .with_variable(c.team_variable(include_all=True))
        .with_variable(c.manager_variable())
        .with_variable(c.pipeline_variable())
    )
    panels = [*_stats(), *_throughput_and_funnel(), *_stages_and_tasks(), *_calls()]
    for panel in [*panels, *_discipline_and_segments(), *_task_descriptions()]:
        builder = builder.with_panel(panel)
    # Interventions and KPI changes as markers on the time series (the company file).
    builder = builder.annotations(c.manager_annotations())
    return c.finish(builder)
