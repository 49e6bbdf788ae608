"""Sales floor: the wall screen of the sales director and team leads.

Made to be read from across the room in kiosk mode: a top row of team numbers,
then per-manager bars, each coloured green / amber / red against its KPI, and
the firing KPI alerts. The KPIs are "now, in this day / week / month" (the
``window`` variable): instant queries of the recording rules, refreshed every
30 seconds. Below them, workload and capacity read the last 30 days and the
task flow the last 7, whatever the period: capacity is a month's work, and
created tasks have no calendar period.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_models

from . import common as c

UID = "salespulse-sales-floor"
TITLE = "Sales floor"

# Firing salespulse alerts of the team on the screen, and those without a team
# label (an absent label matches "").
FIRING = 'ALERTS{alertstate="firing", alertname=~"Salespulse.*", team=~"$team|"}'


def _team_stats() -> list[c.PanelBuilder]:
    top = 0
    height = 5
    return [
        c.stat_panel(
            "Team average: deals closed",
            "Deals closed (won + lost) per active manager in this period: the team's "
            "total divided by the managers who created or closed a deal or made a call. "
            "Each manager's bar in 'Throughput vs team average' is compared with this.",
            [
                c.query(
                    f"team_window:salespulse_throughput:avg{{{c.TEAM_WINDOW}}}",
                    "{{team}}",
                    instant=True,
                )
            ],
            unit=c.COUNT,
            decimals=1,
            place=c.at(0, top, 4, height),
        ),
        c.stat_panel(
            "Team deals closed",
            "Deals the team's active managers closed (won + lost) in this period.",
            [
                c.query(
                    f"team_window:salespulse_throughput:deals{{{c.TEAM_WINDOW}}}",
                    "{{team}}",
                    instant=True,
                )
            ],
            unit=c.COUNT,
            decimals=0,
            place=c.at(4, top, 4, height),
        ),
        c.stat_panel(
            "Team win rate",
            "Won / (won + lost) over all deals the team closed in this period. "
            "Red below 20%, amber below 25% (the win-rate KPI), green from 25%.",
            [
                c.query(
                    f"team_window:salespulse_win_rate:ratio{{{c.TEAM_WINDOW}}}",
                    "{{team}}",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.WIN_RATE,
            place=c.at(8, top, 4, height),
        ),
        c.stat_panel(
            "Team overdue tasks",
            "Of the team's tasks due in this period whose deadline has passed, the share "
            "that became overdue (each task counted once; tasks due later are not in it "
            "yet). Green below 15%, amber from 15%, red from 20% (the KPI).",
            [
                c.query(
                    f"team_window:salespulse_overdue_rate:ratio{{{c.TEAM_WINDOW}}}",
                    "{{team}}",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.OVERDUE_RATE,
            place=c.at(12, top, 4, height),
        ),
        c.stat_panel(
            "Team average call",
            "Talk time / answered calls over the whole team in this period. Green "
            "below 15 min (the team norm), amber below 27 min, red from 27 min.",
            [
                c.query(
                    f"team_window:salespulse_call_duration_seconds:avg{{{c.TEAM_WINDOW}}}",
                    "{{team}}",
                    instant=True,
                )
            ],
            unit=c.SECONDS,
            decimals=1,
            thresholds=c.CALL_DURATION,
            place=c.at(16, top, 4, height),
        ),
        c.stat_panel(
            "KPI alerts firing",
            "How many salespulse alerts are firing right now for this team or for no team "
            "in particular (Prometheus ALERTS). "
            "Green when none; the table below names them.",
            [c.query(f"count({FIRING}) or vector(0)", "firing", instant=True)],
            unit=c.COUNT,
            decimals=0,
            thresholds=c.ZERO_IS_GOOD,
            place=c.at(20, top, 4, height),
        ),
    ]


def _manager_bars() -> list[c.PanelBuilder]:
    top = 5
    height = 13
    return [
        c.bar_gauge_panel(
            "Deals closed",
            "Deals each manager closed (won + lost) in this period, most first. How far "
            "each is from the team average is the next panel.",
            [
                c.query(
                    f"sort_desc(manager_window:salespulse_throughput:deals{{{c.TEAM_WINDOW}}})",
                    "{{name}}",
                    instant=True,
                )
            ],
            unit=c.COUNT,
            decimals=0,
            place=c.at(0, top, 6, height),
        ),
        c.bar_gauge_panel(
            "Throughput vs team average",
            "How far each manager's deals closed are from their team's average in this "
            "period: 0% is the average, +25% a quarter above it. Green within ±10%, amber "
            "within ±20%, red beyond ±20% (the department's flag). The bar's middle is "
            "the average; it runs from -50% to +50%.",
            [
                c.query(
                    f"sort_desc(manager_window:salespulse_throughput_deviation:ratio{{{c.TEAM_WINDOW}}})",
                    "{{name}}",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.DEVIATION,
            min_value=-0.5,
            max_value=0.5,
            place=c.at(6, top, 6, height),
        ),
        c.bar_gauge_panel(
            "Overdue tasks",
            "Per manager, of the tasks due in this period whose deadline has passed, the "
            "share that became overdue, worst first. Green below 15%, amber from 15%, "
            "red from 20% (the team KPI; a manager with a personal KPI is held to it by "
            "the alerts).",
            [
                c.query(
                    f"sort_desc(manager_window:salespulse_overdue_rate:ratio{{{c.TEAM_WINDOW}}})",
                    "{{name}}",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.OVERDUE_RATE,
            max_value=1,
            place=c.at(12, top, 6, height),
        ),
        c.bar_gauge_panel(
            "Average call",
            "Per manager, talk time / answered calls in this period, longest first. Green "
            "below 15 min (the team norm), amber below 27 min, red from 27 min.",
            [
                c.query(
                    f"sort_desc(manager_window:salespulse_call_duration_seconds:avg{{{c.TEAM_WINDOW}}})",
                    "{{name}}",
                    instant=True,
                )
            ],
            unit=c.SECONDS,
            decimals=1,
            thresholds=c.CALL_DURATION,
            place=c.at(18, top, 6, height),
        ),
    ]


def _funnel_gauge(
    title: str, description: str, expr: str, place: dashboard_models.GridPos
) -> c.PanelBuilder:
    """A funnel as horizontal bars in funnel order: *expr* gives a share per stage."""
    return c.bar_gauge_panel(
        title,
        description,
        [c.instant_table(c.by_funnel_index(expr))],
        unit=c.RATIO,
        decimals=0,
        rows=True,
        max_value=1,
        value_size=22,
        title_size=18,
        transformations=c.funnel_rows(["stage", "Value"]),
        place=place,
    )


def _bottom_row() -> list[c.PanelBuilder]:
    top = 18
    height = 10
    window_pipeline = f'{c.TEAM_WINDOW}, pipeline="$pipeline"'
    return [
        _funnel_gauge(
            "Team funnel",
            "Share of the deals that entered the funnel in this period which reached each "
            "stage, in funnel order (a deal counts once per stage, skipped stages count as "
            "passed). The last stage is the team's overall conversion.",
            "team_window_pipeline_stage:salespulse_cumulative_conversion:ratio"
            f"{{{window_pipeline}}}",
            c.at(0, top, 6, height),
        ),
        c.table_panel(
            "Stage conversion by manager",
            "Per manager (rows) and stage (columns, in funnel order): the share of the "
            "deals that reached the previous stage in this period which also reached this "
            "one. Red below 30% (the stage-conversion KPI): look for a strong drop "
            "between two stages.",
            [
                c.instant_table(
                    c.by_funnel_index(
                        "manager_window_pipeline_stage:salespulse_stage_conversion:ratio"
                        f"{{{window_pipeline}}}"
                    )
                )
            ],
            unit=c.RATIO,
            thresholds=c.STAGE_CONVERSION,
            colour_cells=True,
            transformations=[
                *c.sort_rows("name"),
                *c.sort_rows("index", numeric=True),
                c.transformation(
                    "groupingToMatrix",
                    {"columnField": "stage", "rowField": "name", "valueField": "Value"},
                ),
                c.organize(rename={"name\\stage": "Manager"}),
            ],
            place=c.at(6, top, 8, height),
        ),
        c.bar_gauge_panel(
            "Win rate",
            "Per manager, won / (won + lost) over the deals closed in this period, lowest "
            "first. Red below 20%, amber below 25% (the win-rate KPI), green from 25%.",
            [
                c.query(
                    f"sort(manager_window:salespulse_win_rate:ratio{{{c.TEAM_WINDOW}}})",
                    "{{name}}",
                    instant=True,
                )
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=c.WIN_RATE,
            max_value=1,
            value_size=22,
            title_size=18,
            place=c.at(14, top, 5, height),
        ),
        c.table_panel(
            "Firing KPI alerts",
            "The salespulse alerts firing right now for this team or for no team in "
            "particular, from Prometheus (ALERTS), with the labels that say who and what. "
            "Empty is good.",
            [c.instant_table(FIRING)],
            transformations=[
                c.organize(
                    exclude=["Time", "Value", "__name__", "alertstate", "instance", "job"],
                    rename={"alertname": "Alert"},
                    first=["alertname", "severity", "team", "name", "manager"],
                )
            ],
            no_value="No KPI alert firing",
            place=c.at(19, top, 5, height),
        ),
    ]


# Conversion needs volume a day or a week rarely has: the conversion row reads
# the last 30 days whatever the period on the screen.
TEAM_30D_PIPELINE = 'team="$team", window="30d", pipeline="$pipeline"'
# The drop step of each manager; its table's three queries carry the same
# labels (the step as one "previous → stage" label, no metric name) so that
# Grafana merges them into one row per manager.
DROP_STEP = f"manager_window_pipeline_stage:salespulse_drop_step_gap:ratio{{{TEAM_30D_PIPELINE}}}"


def _step_row(expr: str) -> str:
    unnamed = f'label_replace({expr}, "__name__", "", "", "")'
    return f'label_join({unnamed}, "step", " → ", "previous_stage", "stage")'


def _conversion_row() -> list[c.PanelBuilder]:
    top = 28
    height = 10
    return [
        c.bar_gauge_panel(
            "Overall conversion, 30 days",
            "Per manager, the share of the deals that entered the funnel in the last 30 "
            "days which reached its last stage (won), highest first; the team's pooled "
            "figure on the first bar. Not the win rate: lost deals that never left the "
            "first stages count here too.",
            [
                c.query(
                    f"team_window_pipeline:salespulse_overall_conversion:ratio{{{TEAM_30D_PIPELINE}}}",
                    "Team",
                    instant=True,
                ),
                c.query(
                    "sort_desc(manager_window_pipeline:salespulse_overall_conversion:ratio"
                    f"{{{TEAM_30D_PIPELINE}}})",
                    "{{name}}",
                    "B",
                    instant=True,
                ),
            ],
            unit=c.RATIO,
            decimals=0,
            max_value=None,
            place=c.at(0, top, 8, height),
        ),
        c.table_panel(
            "Where each funnel falls, 30 days",
            "Per manager, the funnel step whose conversion in the last 30 days falls "
            "furthest below the team's at the same step, with both conversions and the "
            "gap in points, largest gap first. A manager at or above the team at every "
            "step has no row.",
            [
                c.instant_table(
                    _step_row(
                        "manager_window_pipeline_stage:salespulse_stage_conversion:ratio"
                        f" and on (manager, window, pipeline, stage) {DROP_STEP}"
                    )
                ),
                c.instant_table(
                    _step_row(
                        "team_window_pipeline_stage:salespulse_stage_conversion:ratio"
                        f"\n+ on (team, window, pipeline, stage) group_right () 0 * {DROP_STEP}"
                    ),
                    "B",
                ),
                c.instant_table(_step_row(DROP_STEP), "C"),
            ],
            unit=c.RATIO,
            transformations=[
                *c.merged_rows("Value #C"),
                c.organize(
                    exclude=[
                        "Time",
                        "manager",
                        "team",
                        "window",
                        "pipeline",
                        "stage",
                        "previous_stage",
                    ],
                    rename={
                        "name": "Manager",
                        "step": "Step",
                        "Value #A": "Conversion",
                        "Value #B": "Team",
                        "Value #C": "Below team by",
                    },
                    first=["name", "step", "Value #A", "Value #B", "Value #C"],
                ),
            ],
            no_value="No manager below the team at any step",
            place=c.at(8, top, 16, height),
        ),
    ]


# Managers short of what the team takes in: none or spare is fine, a fraction of
# a manager is a warning, a whole manager short is red.
MANAGERS_SHORT = c.Thresholds(c.GREEN, ((c.EPSILON, c.AMBER), (1, c.RED)))


def _workload_row() -> list[c.PanelBuilder]:
    """How much the team works on, and how many managers it needs for what it takes in."""
    top = 38
    height = 10
    team = 'team="$team"'
    team_30d = 'team="$team", window="30d"'
    capacity = c.stat_panel(
        "Workload and capacity",
        "Deals the team's managers are working on now; new deals the team took in over "
        "the last 30 days; capacity: the deals one manager closes (won + lost) in 30 "
        "days, the median over the team's managers who closed any; managers needed = "
        "new deals / capacity, against the managers on the team. Short is needed minus "
        "on the team: green at or below 0 (spare capacity), amber up to one manager "
        "short, red from one.",
        [
            c.query(f"team:salespulse_open_deals:sum{{{team}}}", "open deals", "A", instant=True),
            c.query(
                f"team_window:salespulse_deals_created:sum{{{team_30d}}}",
                "new deals, 30 days",
                "B",
                instant=True,
            ),
            c.query(
                f"team_window:salespulse_capacity_deals_per_manager:median{{{team_30d}}}",
                "a manager closes",
                "C",
                instant=True,
            ),
            c.query(
                f"team_window:salespulse_managers_needed:estimate{{{team_30d}}}",
                "managers needed",
                "D",
                instant=True,
            ),
            c.query(f"team:salespulse_managers:count{{{team}}}", "on the team", "E", instant=True),
            c.query(
                f"team_window:salespulse_managers_short:diff{{{team_30d}}}",
                "short",
                "F",
                instant=True,
            ),
        ],
        unit=c.COUNT,
        decimals=0,
        title_size=18,
        place=c.at(0, top, 10, height),
    )
    capacity = capacity.override_by_name(
        "managers needed", [dashboard_models.DynamicConfigValue(id_val="decimals", value=1)]
    ).override_by_name(
        "short",
        [
            dashboard_models.DynamicConfigValue(id_val="decimals", value=1),
            dashboard_models.DynamicConfigValue(id_val="color", value={"mode": "thresholds"}),
            dashboard_models.DynamicConfigValue(
                id_val="thresholds", value=MANAGERS_SHORT.build().build()
            ),
        ],
    )
    stages = c.by_funnel_index(
        f'manager_pipeline_stage:salespulse_open_deals:sum{{{team}, pipeline="$pipeline"}}'
    )
    # Each manager's open deals in all, as a last column after the funnel's stages.
    in_all = (
        'label_replace(label_replace(manager:salespulse_open_deals:sum{team="$team"}, '
        '"stage", "all", "", ""), "index", "1000", "", "")'
    )
    open_deals = c.table_panel(
        "Open deals by manager and stage",
        "Deals each manager is working on now (rows), by the stage each deal is in "
        "(columns, in funnel order), and in all. Compare a row's total with the team's "
        "capacity in 'Workload and capacity': deals a manager closes in 30 days.",
        [c.instant_table(f"{stages}\nor {in_all}")],
        transformations=[
            *c.sort_rows("name"),
            *c.sort_rows("index", numeric=True),
            c.transformation(
                "groupingToMatrix",
                {"columnField": "stage", "rowField": "name", "valueField": "Value"},
            ),
            c.organize(rename={"name\\stage": "Manager"}),
        ],
        no_value="No open deals",
        place=c.at(10, top, 14, height),
    )
    return [capacity, open_deals]


# The columns of 'Tasks, last 7 days': (column, order, recorded series).
TASK_COLUMNS = (
    ("new", "0", "manager_window:salespulse_tasks_created:sum"),
    ("completed", "1", "manager_window:salespulse_tasks_completed:sum"),
    ("of them on time", "2", "manager_window:salespulse_tasks_completed_on_time:sum"),
    ("became overdue", "3", "manager_window:salespulse_tasks_overdue:sum"),
)


def _tasks_row() -> list[c.PanelBuilder]:
    """Tasks given and done per manager, beside the overdue rate of 'Overdue tasks'."""
    top = 48
    height = 10
    columns = "\nor ".join(
        f'label_replace(label_replace({record}{{team="$team", window="7d"}}, '
        f'"column", "{column}", "", ""), "order", "{order}", "", "")'
        for column, order, record in TASK_COLUMNS
    )
    return [
        c.table_panel(
            "Tasks, last 7 days",
            "Per manager, over the last 7 days: new tasks, tasks completed and of them "
            "those completed by their deadline, and tasks that passed their deadline "
            "uncompleted. Many new tasks and few completed means tasks pile up; the "
            "share that became overdue in this period is 'Overdue tasks'.",
            [c.instant_table(columns)],
            transformations=[
                *c.sort_rows("name"),
                *c.sort_rows("order", numeric=True),
                c.transformation(
                    "groupingToMatrix",
                    {"columnField": "column", "rowField": "name", "valueField": "Value"},
                ),
                c.organize(rename={"name\\column": "Manager"}),
            ],
            no_value="No tasks in the last 7 days",
            place=c.at(0, top, 12, height),
        )
    ]


# Monthly plans: the month is the plan's period whatever the window on screen.
# Each table's queries drop the plan label (and the metric name) so that Grafana
# merges them into one row per manager or team.
def _plan_column(record: str, plan: str, selector: str = "") -> str:
    return f'max without (plan) ({record}{{{selector}plan="{plan}"}})'


def _department_row(record: str, plan: str) -> str:
    return f'label_replace({_plan_column(record, plan)}, "team", "Department", "", "")'


# The forecast of this month's won value (mean, 10th and 90th percentile) as a share of
# the won-value plan, beside attainment and pace (deploy/prometheus: salespulse_forecast).
FORECAST_COLUMNS = {
    "Value #D": "Forecast vs plan (won value)",
    "Value #E": "Forecast low (p10)",
    "Value #F": "Forecast high (p90)",
}


def _forecast_columns(level: str, plan: str, selector: str = "", on: str = "") -> list[str]:
    """Queries D, E, F: the forecast's mean, p10 and p90 over the won-value plan *plan*
    (already aggregated to the forecast's own labels)."""
    return [
        f"{level}:salespulse_forecast_won_amount:{stat}{selector}\n/ {on}({plan} > 0)"
        for stat in ("sum", "p10", "p90")
    ]


def _plan_row() -> list[c.PanelBuilder]:
    top = 58
    height = 10
    team = 'team="$team", '
    attainment = "manager_plan:salespulse_plan_attainment:ratio"
    gap = "manager_plan:salespulse_plan_pace_gap:ratio"
    team_attainment = "team_plan:salespulse_plan_attainment:ratio"
    team_gap = "team_plan:salespulse_plan_pace_gap:ratio"
    department_attainment = "plan:salespulse_plan_attainment:ratio"
    department_gap = "plan:salespulse_plan_pace_gap:ratio"
    columns = {
        "Value #A": "Won value vs plan",
        "Value #B": "Deals closed vs plan",
        "Value #C": "Against pace (won value)",
    }
    return [
        c.table_panel(
            "Plan leaderboard, this month",
            "The team's managers ranked by won value against their monthly plan, with "
            "deals closed (won + lost) against plan, and how far ahead (+) or behind "
            "(-) the pace they are in points: the pace is the share of the month that "
            "has passed, where a manager on plan would be by now. The forecast is the "
            "won value expected by the month's end (won so far plus each open deal's "
            "amount times its chance of being won this month), with its 10th-90th "
            "percentile range, against the won-value plan.",
            [
                c.instant_table(_plan_column(attainment, "won_amount", team)),
                c.instant_table(_plan_column(attainment, "deals_closed", team), "B"),
                c.instant_table(_plan_column(gap, "won_amount", team), "C"),
                *(
                    c.instant_table(expr, ref)
                    for expr, ref in zip(
                        _forecast_columns(
                            "manager",
                            "max by (manager) (manager_plan:salespulse_plan_target:effective"
                            '{plan="won_amount"})',
                            '{team="$team"}',
                            "on (manager) group_left () ",
                        ),
                        "DEF",
                        strict=True,
                    )
                ),
            ],
            unit=c.RATIO,
            transformations=[
                *c.merged_rows("Value #A"),
                c.organize(
                    exclude=["Time", "manager", "team"],
                    rename={"name": "Manager", **columns, **FORECAST_COLUMNS},
                    first=["name", "Value #A", "Value #B", "Value #C", *FORECAST_COLUMNS],
                ),
            ],
            no_value="No monthly plan in the company file",
            place=c.at(0, top, 14, height),
        ),
        c.table_panel(
            "Plan by team, this month",
            "Every team, whatever team is on screen, and the whole department: won "
            "value and deals closed against the sum of their managers' monthly plans, "
            "how far ahead (+) or behind (-) the pace in points, and the forecast of "
            "the month's won value with its 10th-90th percentile range, against plan.",
            [
                c.instant_table(
                    f"{_plan_column(team_attainment, 'won_amount')}\n"
                    f"or {_department_row(department_attainment, 'won_amount')}"
                ),
                c.instant_table(
                    f"{_plan_column(team_attainment, 'deals_closed')}\n"
                    f"or {_department_row(department_attainment, 'deals_closed')}",
                    "B",
                ),
                c.instant_table(
                    f"{_plan_column(team_gap, 'won_amount')}\n"
                    f"or {_department_row(department_gap, 'won_amount')}",
                    "C",
                ),
                *(
                    c.instant_table(
                        f"{team_expr}\nor label_replace({department_expr}, "
                        '"team", "Department", "", "")',
                        ref,
                    )
                    for team_expr, department_expr, ref in zip(
                        _forecast_columns(
                            "team",
                            "max by (team) "
                            '(team_plan:salespulse_plan_target:sum{plan="won_amount"})',
                        ),
                        _forecast_columns(
                            "department",
                            'sum(team_plan:salespulse_plan_target:sum{plan="won_amount"})',
                        ),
                        "DEF",
                        strict=True,
                    )
                ),
            ],
            unit=c.RATIO,
            transformations=[
                *c.merged_rows("Value #A"),
                c.organize(
                    exclude=["Time"],
                    rename={"team": "Team", **columns, **FORECAST_COLUMNS},
                    first=["team", "Value #A", "Value #B", "Value #C", *FORECAST_COLUMNS],
                ),
            ],
            no_value="No monthly plan in the company file",
            place=c.at(14, top, 10, height),
        ),
    ]


# Stuck share: amber from a tenth of the open deals, red from a quarter (where
# SalespulseStuckDealsRising starts to look, if the share is also rising).
STUCK_SHARE = c.Thresholds(c.GREEN, ((0.10, c.AMBER), (0.25, c.RED)))


def _stuck_row() -> list[c.PanelBuilder]:
    top = 68
    height = 10
    return [
        c.bar_gauge_panel(
            "Stuck deals, now",
            "Per manager, the share of the open deals that have stayed in their stage "
            "longer than the stage's limit (stuck_after_days in the company file), "
            "worst first; the team's pooled share on the first bar. Stages without a "
            "limit hold no stuck deals. The second bar needs no limit: the share of the "
            "team's open deals longer in their stage than the team's 75th percentile of "
            "time there over 30 days. Green below 10%, amber from 10%, red from 25%.",
            [
                c.query('team:salespulse_stuck_share:ratio{team="$team"}', "Team", instant=True),
                c.query(
                    'team:salespulse_open_deals_beyond_usual:ratio{team="$team"}',
                    "Team, past its usual time",
                    "C",
                    instant=True,
                ),
                c.query(
                    'sort_desc(manager:salespulse_stuck_share:ratio{team="$team"})',
                    "{{name}}",
                    "B",
                    instant=True,
                ),
            ],
            unit=c.RATIO,
            decimals=0,
            thresholds=STUCK_SHARE,
            max_value=1,
            place=c.at(0, top, 8, height),
        ),
    ]


# Do tasks move results? Pearson's r across the team's managers over the last
# 30 days, and the managers' own figures behind it, one row each (the three
# queries carry only manager and name so that Grafana merges them by manager).
TEAM_30D = 'team="$team", window="30d"'
CORRELATION = c.Thresholds(c.RED, ((0.3, c.AMBER), (0.5, c.GREEN)))


def _tasks_results_row() -> list[c.PanelBuilder]:
    top = 78
    height = 10
    per_manager = "max by (manager, name) ({})"
    return [
        c.stat_panel(
            "Tasks vs results, 30 days",
            "Across the team's managers, the correlation (Pearson's r, -1 to 1) over the "
            "last 30 days between the share of tasks done on time and the overall "
            "conversion, and the deals won. Near 1: who keeps to the tasks sells more. "
            "If there is no correlation between tasks and results, review the processes: "
            "the tasks set are not the ones that move deals. Red below 0.3, amber below "
            "0.5. Needs 3 managers with different on-time rates.",
            [
                c.query(
                    "team_window_pipeline:salespulse_on_time_vs_conversion:pearson_r"
                    f'{{{TEAM_30D}, pipeline="$pipeline"}}',
                    "vs conversion",
                    instant=True,
                ),
                c.query(
                    f"team_window:salespulse_on_time_vs_deals_won:pearson_r{{{TEAM_30D}}}",
                    "vs deals won",
                    "B",
                    instant=True,
                ),
            ],
            unit=c.COUNT,
            decimals=2,
            thresholds=CORRELATION,
            no_value="Too few managers",
            place=c.at(0, top, 8, height),
        ),
        c.table_panel(
            "Tasks and results by manager, 30 days",
            "Per manager, over the last 30 days: the share of the tasks due whose "
            "deadline passed that were done on time, the overall conversion (first "
            "stage to won) and the deals won, best at tasks first. The correlation "
            "beside it reads these rows.",
            [
                c.instant_table(
                    per_manager.format(
                        f"manager_window:salespulse_tasks_on_time:ratio{{{TEAM_30D}}}"
                    )
                ),
                c.instant_table(
                    per_manager.format(
                        "manager_window_pipeline:salespulse_overall_conversion:ratio"
                        f'{{{TEAM_30D}, pipeline="$pipeline"}}'
                    ),
                    "B",
                ),
                c.instant_table(
                    per_manager.format(f"manager_window:salespulse_deals_won:sum{{{TEAM_30D}}}"),
                    "C",
                ),
            ],
            unit=c.RATIO,
            transformations=[
                *c.merged_rows("Value #A"),
                c.organize(
                    exclude=["Time", "manager"],
                    rename={
                        "name": "Manager",
                        "Value #A": "Tasks on time",
                        "Value #B": "Conversion",
                        "Value #C": "Deals won",
                    },
                    first=["name", "Value #A", "Value #B", "Value #C"],
                ),
            ],
            place=c.at(8, top, 16, height),
        ).override_by_name(
            "Deals won", [dashboard_models.DynamicConfigValue(id_val="unit", value=c.COUNT)]
        ),
    ]


# The funnel and won value of the products, channels and segments picked in the
# filters, over 30 days, from the bounded team families: the deals of a
# selection are summed before dividing, so a small channel weighs by its deals.
FUNNEL_30D = "team_pipeline_stage_product_channel:salespulse_stage_reached:increase30d"
SELECTED = 'team="$team", pipeline="$pipeline", product=~"$product", channel=~"$channel"'
WON_AMOUNT = "team_pipeline_segment:salespulse_segment_won_amount:sum"
WON_SELECTED = 'team="$team", pipeline="$pipeline", segment=~"$segment"'
# Customers won and won value over 30 days, recorded by the salespulse_customers rules.
CUSTOMERS_30D = "team_window_pipeline_segment:salespulse_won_customers:sum"
WON_30D = "team_window_pipeline_segment:salespulse_segment_won_amount:sum"
WON_SELECTED_30D = f'{WON_SELECTED}, window="30d"'


def _filtered_row() -> list[c.PanelBuilder]:
    top = 88
    height = 10
    reached = f"sum by (pipeline, stage) ({FUNNEL_30D}{{{SELECTED}}})"
    entered = (
        f"sum by (pipeline) (\n    {FUNNEL_30D}{{{SELECTED}}}\n"
        "  * on (pipeline, stage) group_left ()\n"
        '    max by (pipeline, stage) (salespulse_funnel_stage_info{index="0"})\n)'
    )
    won = f"{WON_AMOUNT}{{{WON_SELECTED}}}"
    return [
        _funnel_gauge(
            "Funnel by product and channel, 30 days",
            "For the products and channels picked at the top, the share of the deals "
            "that entered the funnel in the last 30 days which reached each stage, in "
            "funnel order; the last stage is their overall conversion. Compare two "
            "channels by picking one, then the other: lead quality should be the same.",
            f"{reached}\n/ on (pipeline) group_left ()\n({entered} > 0)",
            c.at(0, top, 12, height),
        ),
        c.table_panel(
            "Won value by segment, 30 days",
            "Per market segment (those picked at the top), over the last 30 days: the "
            "value of the deals the team won, in the CRM's currency, the customers they "
            "were won with, and the value per customer, largest value first. A customer "
            "counts once per manager and calendar month; deals sent without a customer "
            "add value but no customer.",
            [
                c.instant_table(
                    f"sum by (segment) (\n  clamp_min({won} - {won} offset 30d, 0)\n  or {won}\n)"
                ),
                c.instant_table(f"sum by (segment) ({CUSTOMERS_30D}{{{WON_SELECTED_30D}}})", "B"),
                c.instant_table(
                    f"sum by (segment) ({WON_30D}{{{WON_SELECTED_30D}}})\n"
                    f"/ (sum by (segment) ({CUSTOMERS_30D}{{{WON_SELECTED_30D}}}) > 0)",
                    "C",
                ),
            ],
            transformations=[
                *c.merged_rows("Value #A"),
                c.organize(
                    exclude=["Time"],
                    rename={
                        "segment": "Segment",
                        "Value #A": "Won value",
                        "Value #B": "Customers",
                        "Value #C": "Value per customer",
                    },
                    first=["segment", "Value #A", "Value #B", "Value #C"],
                ),
            ],
            place=c.at(12, top, 12, height),
        ),
    ]


def build() -> dashboard_models.Dashboard:
    builder = (
        c.base_dashboard(
            UID,
            TITLE,
            "Wall screen: the team and each manager this day / week / month against the "
            "department's KPIs. Green is fine, amber is a warning, red breaks the KPI.",
            refresh="30s",
            time_from="now-24h",
        )
        .with_variable(c.window_variable())
        .with_variable(c.team_variable(include_all=False))
        .with_variable(c.pipeline_variable())
        .with_variable(c.label_filter_variable("product", "Product", FUNNEL_30D))
        .with_variable(c.label_filter_variable("channel", "Channel", FUNNEL_30D))
        .with_variable(c.label_filter_variable("segment", "Segment", WON_AMOUNT))
    )
    rows = [
        *_team_stats(),
        *_manager_bars(),
        *_bottom_row(),
        *_conversion_row(),
        *_workload_row(),
        *_tasks_row(),
        *_plan_row(),
        *_stuck_row(),
        *_tasks_results_row(),
        *_filtered_row(),
    ]
    for panel in rows:
        builder = builder.with_panel(panel)
    # Interventions and KPI changes as markers on the time series (the company file).
    builder = builder.annotations(c.team_annotations())
    return c.finish(builder)
