"""Pieces every salespulse dashboard shares: datasource, units, colours, thresholds,
variables, query and panel factories, and the finishing touch (panel ids).

Conventions
- Every panel and every query names the provisioned Prometheus datasource (uid
  ``prometheus``); nothing depends on Grafana's default datasource.
- Panels are placed explicitly with :func:`at` on the 24-column grid.
- Ratios use ``percentunit``, durations ``s``, counts ``none``.
- Threshold colours: green is fine, orange (amber) is a warning, red is broken.
  Grafana colours a value with the highest step it reaches (value >= step).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus as prometheus_builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

PanelBuilder = Builder[dashboard_models.Panel]

# -- datasource ----------------------------------------------------------------------

DATASOURCE_UID = "prometheus"
DATASOURCE_TYPE = "prometheus"


def datasource() -> dashboard_models.DataSourceRef:
    """The provisioned Prometheus (provisioning/datasources/prometheus.yml)."""
    return dashboard_models.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


# -- units and colours ---------------------------------------------------------------

RATIO = "percentunit"
SECONDS = "s"
COUNT = "none"
PER_SECOND = "ops"

GREEN = "green"
AMBER = "orange"
RED = "red"
BLUE = "blue"
NEUTRAL = "text"

# The step just above a boundary, so that the boundary itself still gets the
# colour below it ("within ±10%" includes 10%).
EPSILON = 1e-9

Step = tuple[float, str]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A base colour and ascending (value, colour) steps; a value takes the colour of
    the highest step it reaches."""

    base: str
    steps: tuple[Step, ...] = ()

    def build(self) -> dashboard_builders.ThresholdsConfig:
        steps = [dashboard_models.Threshold(value=None, color=self.base)]
        steps += [
            dashboard_models.Threshold(value=value, color=color) for value, color in self.steps
        ]
        return (
            dashboard_builders.ThresholdsConfig()
            .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
            .steps(steps)
        )


# Throughput deviation from the team average: green within ±10%, amber to ±20%,
# red beyond (the department's flag is more than 20% off the average).
DEVIATION = Thresholds(
    RED,
    ((-0.20, AMBER), (-0.10, GREEN), (0.10 + EPSILON, AMBER), (0.20 + EPSILON, RED)),
)
# Overdue-task rate: the team KPI is at most 20%; amber from 15% warns before it breaks.
# Static on purpose: a bar gauge colours all managers with one set of thresholds,
# so a manager with a personal max_overdue_rate is judged against the team KPI
# here and against their own one by the alert rules.
OVERDUE_RATE = Thresholds(GREEN, ((0.15, AMBER), (0.20, RED)))
# Average answered call: team norm 15 min; 27 min is the coaching KPI of the
# worst case, beyond it is red.
CALL_DURATION = Thresholds(GREEN, ((15 * 60, AMBER), (27 * 60, RED)))
# Win rate: the demo company's min_win_rate is 25%; amber from 20%.
WIN_RATE = Thresholds(RED, ((0.20, AMBER), (0.25, GREEN)))
# Stage-to-stage conversion: below min_stage_conversion (30% by default) is red.
STAGE_CONVERSION = Thresholds(RED, ((0.30, GREEN),))
# Regulation compliance: min_regulation_compliance is 90%; amber up to 95%.
COMPLIANCE = Thresholds(RED, ((0.90, AMBER), (0.95, GREEN)))
# Anything above zero deserves a look (firing alerts, workers not ready).
ZERO_IS_GOOD = Thresholds(GREEN, ((1, RED),))
# No judgement, one calm colour.
PLAIN = Thresholds(BLUE)


# -- PromQL fragments ----------------------------------------------------------------

TEAM_WINDOW = 'team="$team", window="$window"'
MANAGER_WINDOW = 'manager="$manager", window="$window"'


def by_funnel_index(expr: str, pipeline: str = "$pipeline") -> str:
    """*expr* (labels pipeline and stage) with each stage's funnel ``index`` label added,
    and only the stages of the funnel order (lost stages have no index)."""
    return (
        f"{expr}\n* on (pipeline, stage) group_left (index)\n"
        f'  max by (pipeline, stage, index) (salespulse_funnel_stage_info{{pipeline="{pipeline}"}})'
    )


# -- variables -----------------------------------------------------------------------


def _option(text: str, value: str, selected: bool) -> dashboard_models.VariableOption:
    return dashboard_models.VariableOption(selected=selected, text=text, value=value)


def window_variable() -> dashboard_builders.CustomVariable:
    """The calendar period of the period gauges: day, ISO week or month; week by default."""
    values = ("day", "week", "month")
    return (
        dashboard_builders.CustomVariable("window")
        .label("Period")
        .description("Calendar period that contains now, in the company's time zone.")
        .values(",".join(values))
        .current(_option("week", "week", True))
        .options([_option(value, value, value == "week") for value in values])
        .multi(False)
        .include_all(False)
    )


def _query_variable(name: str, label: str, query: str) -> dashboard_builders.QueryVariable:
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(datasource())
        .query(query)
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
    )


def team_variable(*, include_all: bool) -> dashboard_builders.QueryVariable:
    """The team; with *include_all*, also All (``.*``, unconfigured managers included).

    The wall screen shows one team (no All): its averages and ratios are that
    team's, and every manager is compared with the team on the screen.
    """
    variable = _query_variable("team", "Team", "label_values(salespulse_manager_info, team)")
    if include_all:
        return (
            variable.description("Team from the company configuration; All includes every team.")
            .include_all(True)
            .all_value(".*")
            .multi(False)
            .current(_option("All", "$__all", True))
        )
    return (
        variable.description("Team from the company configuration.").include_all(False).multi(False)
    )


def pipeline_variable() -> dashboard_builders.QueryVariable:
    """The funnel whose stages are shown (most companies have one: default)."""
    return (
        _query_variable(
            "pipeline", "Funnel", "label_values(salespulse_funnel_stage_info, pipeline)"
        )
        .description("Funnel (pipeline) whose stages the funnel panels show.")
        .include_all(False)
        .multi(False)
    )


def label_filter_variable(name: str, label: str, series: str) -> dashboard_builders.QueryVariable:
    """A filter on one bounded label of the team families (product, channel, segment),
    its values those *series* of the team on screen carry; several or All (``.*``).
    Queries select with ``name=~"$name"``."""
    return (
        _query_variable(name, label, f'label_values({series}{{team="$team"}}, {name})')
        .description(f"{label}s the filtered panels count; All counts every one.")
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .current(_option("All", "$__all", True))
    )


def manager_variable() -> dashboard_builders.QueryVariable:
    """One manager, listed by name, valued by id (the ``manager`` label).

    ``label_values(salespulse_manager_info, manager)`` would list ids only; the query
    result carries the name too, and the regex's named groups split it into the
    text shown and the value used (labels come sorted: manager before name).
    """
    return (
        _query_variable(
            "manager",
            "Manager",
            'query_result(max by (manager, name) (salespulse_manager_info{team=~"$team"}))',
        )
        .description("Manager to drill into, by name (the value is the manager id).")
        .regex('/manager="(?<value>[^"]*)".*name="(?<text>[^"]*)"/')
        .include_all(False)
        .multi(False)
    )


def instance_variable() -> dashboard_builders.QueryVariable:
    """Worker processes (Prometheus ``instance``), all by default."""
    return (
        _query_variable("instance", "Worker", "label_values(salespulse_build_info, instance)")
        .description("Worker processes (scrape targets) to include.")
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .current(_option("All", "$__all", True))
    )


# -- queries -------------------------------------------------------------------------


def query(
    expr: str,
    legend: str = "__auto",
    ref_id: str = "A",
    *,
    instant: bool = False,
    fmt: prometheus_models.PromQueryFormat = prometheus_models.PromQueryFormat.TIME_SERIES,
    interval: str | None = None,
) -> prometheus_builders.Dataquery:
    """A Prometheus query on the provisioned datasource."""
    built = (
        prometheus_builders.Dataquery()
        .datasource(datasource())
        .ref_id(ref_id)
        .expr(expr)
        .legend_format(legend)
        .format(fmt)
        .editor_mode(prometheus_models.QueryEditorMode.CODE)
    )
    built = built.instant() if instant else built.range()
    if interval is not None:
        built = built.interval(interval)
    return built


def instant_table(expr: str, ref_id: str = "A") -> prometheus_builders.Dataquery:
    """An instant query rendered as one table: a row per series, a column per label."""
    return query(expr, "", ref_id, instant=True, fmt=prometheus_models.PromQueryFormat.TABLE)


# -- transformations -----------------------------------------------------------------


def transformation(kind: str, options: dict[str, object]) -> dashboard_models.DataTransformerConfig:
    return dashboard_models.DataTransformerConfig(id_val=kind, options=options)


def sort_rows(field: str, *, numeric: bool = False) -> list[dashboard_models.DataTransformerConfig]:
    """Sort table rows by *field* (converted to a number first when *numeric*)."""
    steps: list[dashboard_models.DataTransformerConfig] = []
    if numeric:
        steps.append(
            transformation(
                "convertFieldType",
                {
                    "conversions": [{"targetField": field, "destinationType": "number"}],
                    "fields": {},
                },
            )
        )
    steps.append(
        transformation("sortBy", {"fields": {}, "sort": [{"field": field, "desc": False}]})
    )
    return steps


def merged_rows(
    descending_by: str,
) -> list[dashboard_models.DataTransformerConfig]:
    """One row per label set out of a table's instant queries, the largest
    *descending_by* first (a field such as "Value #A")."""
    return [
        transformation("merge", {}),
        transformation("sortBy", {"fields": {}, "sort": [{"field": descending_by, "desc": True}]}),
    ]


def keep_fields(names: Sequence[str]) -> list[dashboard_models.DataTransformerConfig]:
    """Keep only *names*, in that order (a bar gauge names each row by its text fields)."""
    return [
        transformation("filterFieldsByName", {"include": {"names": list(names)}}),
        transformation(
            "organize",
            {
                "excludeByName": {},
                "includeByName": {},
                "indexByName": {name: position for position, name in enumerate(names)},
                "renameByName": {},
            },
        ),
    ]


def funnel_rows(names: Sequence[str]) -> list[dashboard_models.DataTransformerConfig]:
    """Rows of a :func:`by_funnel_index` table query in funnel order, with *names* kept."""
    return [*sort_rows("index", numeric=True), *keep_fields(names)]


def organize(
    exclude: Iterable[str] = (),
    rename: dict[str, str] | None = None,
    first: Sequence[str] = (),
) -> dashboard_models.DataTransformerConfig:
    """Hide *exclude*, rename by *rename*, and put the fields *first* in front, in order."""
    return transformation(
        "organize",
        {
            "excludeByName": {name: True for name in exclude},
            "includeByName": {},
            "indexByName": {name: position for position, name in enumerate(first)},
            "renameByName": dict(rename or {}),
        },
    )


# -- panels --------------------------------------------------------------------------


def at(x: int, y: int, w: int, h: int) -> dashboard_models.GridPos:
    """A place on the 24-column grid."""
    return dashboard_models.GridPos(x=x, y=y, w=w, h=h)


def _reduce(*, values: bool = False) -> common_builders.ReduceDataOptions:
    options = common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(values)
    return options.limit(100) if values else options


def fixed_color(color: str) -> dashboard_builders.FieldColor:
    return (
        dashboard_builders.FieldColor()
        .mode(dashboard_models.FieldColorModeId.FIXED)
        .fixed_color(color)
    )


def threshold_color() -> dashboard_builders.FieldColor:
    return dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.THRESHOLDS)


def stat_panel(
    title: str,
    description: str,
    targets: Sequence[prometheus_builders.Dataquery],
    *,
    unit: str,
    thresholds: Thresholds | None = None,
    place: dashboard_models.GridPos,
    value_size: int = 56,
    title_size: int = 20,
    decimals: int | None = None,
    text_mode: common_models.BigValueTextMode = common_models.BigValueTextMode.AUTO,
    no_value: str | None = None,
) -> stat.Panel:
    """A big number, readable across the room: no sparkline, large text, coloured
    background by thresholds (or a calm fixed colour without them)."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .grid_pos(place)
        .unit(unit)
        .graph_mode(common_models.BigValueGraphMode.NONE)
        .text_mode(text_mode)
        .justify_mode(common_models.BigValueJustifyMode.CENTER)
        .orientation(common_models.VizOrientation.AUTO)
        .reduce_options(_reduce())
        .text(common_builders.VizTextDisplayOptions().value_size(value_size).title_size(title_size))
    )
    if thresholds is None:
        panel = (
            panel.color_mode(common_models.BigValueColorMode.VALUE)
            .color_scheme(fixed_color(NEUTRAL))
            .thresholds(PLAIN.build())
        )
    else:
        panel = (
            panel.color_mode(common_models.BigValueColorMode.BACKGROUND)
            .color_scheme(threshold_color())
            .thresholds(thresholds.build())
        )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


def bar_gauge_panel(
    title: str,
    description: str,
    targets: Sequence[prometheus_builders.Dataquery],
    *,
    unit: str,
    thresholds: Thresholds | None = None,
    place: dashboard_models.GridPos,
    rows: bool = False,
    min_value: float | None = 0,
    max_value: float | None = None,
    decimals: int | None = None,
    value_size: int = 26,
    title_size: int = 20,
    transformations: Sequence[dashboard_models.DataTransformerConfig] = (),
) -> bargauge.Panel:
    """Horizontal bars, one per series (or per table row when *rows*), large text,
    coloured by thresholds (or one fixed colour without them)."""
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .grid_pos(place)
        .unit(unit)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.BASIC)
        .value_mode(common_models.BarGaugeValueMode.COLOR)
        .name_placement(common_models.BarGaugeNamePlacement.LEFT)
        .show_unfilled(True)
        .sizing(common_models.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
        .max_viz_height(300)
        .reduce_options(_reduce(values=rows))
        .text(common_builders.VizTextDisplayOptions().value_size(value_size).title_size(title_size))
    )
    if thresholds is None:
        panel = panel.color_scheme(fixed_color(BLUE)).thresholds(PLAIN.build())
    else:
        panel = panel.color_scheme(threshold_color()).thresholds(thresholds.build())
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if decimals is not None:
        panel = panel.decimals(decimals)
    if transformations:
        panel = panel.transformations(list(transformations))
    return panel


def timeseries_panel(
    title: str,
    description: str,
    targets: Sequence[prometheus_builders.Dataquery],
    *,
    unit: str,
    place: dashboard_models.GridPos,
    thresholds: Thresholds | None = None,
    min_value: float | None = 0,
    bars: bool = False,
    stepped: bool = False,
) -> timeseries.Panel:
    """Lines over the dashboard's time range, legend below, shared tooltip."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .grid_pos(place)
        .unit(unit)
        .line_width(2)
        .fill_opacity(10)
        .show_points(common_models.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
        .color_scheme(
            dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.PALETTE_CLASSIC)
        )
        .thresholds((thresholds or PLAIN).build())
    )
    if bars:
        panel = (
            panel.draw_style(common_models.GraphDrawStyle.BARS)
            .fill_opacity(80)
            .stacking(common_builders.StackingConfig().mode(common_models.StackingMode.NORMAL))
        )
    if stepped:
        panel = panel.line_interpolation(common_models.LineInterpolation.STEP_AFTER)
    if min_value is not None:
        panel = panel.min(min_value)
    return panel


def dashed_line(color: str) -> list[dashboard_models.DynamicConfigValue]:
    """Override properties that draw a series as a dashed reference line of *color*
    (``panel.override_by_name(legend, dashed_line(RED))``)."""
    return [
        dashboard_models.DynamicConfigValue(
            id_val="color", value={"mode": "fixed", "fixedColor": color}
        ),
        dashboard_models.DynamicConfigValue(
            id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
        ),
        dashboard_models.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]


def target_line() -> list[dashboard_models.DynamicConfigValue]:
    """A KPI target: dashed red."""
    return dashed_line(RED)


def average_line() -> list[dashboard_models.DynamicConfigValue]:
    """A team average to compare with: dashed, in the neutral text colour."""
    return dashed_line(NEUTRAL)


def table_panel(
    title: str,
    description: str,
    targets: Sequence[prometheus_builders.Dataquery],
    *,
    place: dashboard_models.GridPos,
    unit: str = COUNT,
    thresholds: Thresholds | None = None,
    colour_cells: bool = False,
    transformations: Sequence[dashboard_models.DataTransformerConfig] = (),
    no_value: str | None = None,
) -> table.Panel:
    """A table with large rows; cells coloured by thresholds when *colour_cells*."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .grid_pos(place)
        .unit(unit)
        .cell_height(common_models.TableCellHeight.LG)
        .show_header(True)
        .thresholds((thresholds or PLAIN).build())
    )
    if colour_cells:
        panel = panel.color_scheme(threshold_color()).cell_options(
            common_models.TableColoredBackgroundCellOptions(
                mode=common_models.TableCellBackgroundDisplayMode.BASIC
            )
        )
    if transformations:
        panel = panel.transformations(list(transformations))
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


# -- dashboards ----------------------------------------------------------------------


def base_dashboard(
    uid: str, title: str, description: str, *, refresh: str, time_from: str
) -> dashboard_builders.Dashboard:
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["salespulse"])
        .timezone("browser")
        .refresh(refresh)
        .time(time_from, "now")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            dashboard_builders.DashboardLink("salespulse")
            .type(dashboard_models.DashboardLinkType.DASHBOARDS)
            .tags(["salespulse"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
            .target_blank(False)
        )
    )


def finish(builder: dashboard_builders.Dashboard) -> dashboard_models.Dashboard:
    """The built dashboard with panel ids numbered 1, 2, ... in layout order."""
    built = builder.build()
    for number, panel in enumerate(built.panels or [], start=1):
        panel.id_val = number
    return built


# -- annotations: interventions and KPI changes ----------------------------------------

# The series hold seconds since the epoch; Grafana reads a value as time in milliseconds.
_INTERVENTIONS = "salespulse_intervention_timestamp_seconds"
_KPI_CHANGES = "salespulse_kpi_change_timestamp_seconds"
# A marker's series is constant, so one sample an hour is plenty: a finer step only
# draws the same marker again for every sample in the range.
ANNOTATION_STEP = "1h"


class _ValueTimedAnnotation(dashboard_models.AnnotationQuery):
    """A Prometheus annotation that places each marker at its series' value ("series
    value as timestamp"). The SDK's model has no field for that option nor for the
    title and tag formats, so they are added to its JSON here."""

    def __init__(self, *, title_format: str, text_format: str, tag_keys: str, **kwargs: object):
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.title_format = title_format
        self.text_format = text_format
        self.tag_keys = tag_keys

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update(
            useValueForTime=True,
            step=ANNOTATION_STEP,
            titleFormat=self.title_format,
            textFormat=self.text_format,
            tagKeys=self.tag_keys,
        )
        return payload


class _Annotation(Builder[dashboard_models.AnnotationQuery]):
    """Hands one value-timed annotation to the dashboard builder."""

    def __init__(self, annotation: _ValueTimedAnnotation):
        self._annotation = annotation

    def build(self) -> dashboard_models.AnnotationQuery:
        return self._annotation


def _annotation(
    name: str, expr: str, color: str, *, title: str, text: str, tags: str
) -> _Annotation:
    return _Annotation(
        _ValueTimedAnnotation(
            name=name,
            datasource=datasource(),
            enable=True,
            hide=False,
            icon_color=color,
            expr=f"1000 * (\n{expr}\n)",
            title_format=title,
            text_format=text,
            tag_keys=tags,
        )
    )


def intervention_annotation(selector: str) -> _Annotation:
    """Interventions of the company file whose labels match *selector* (PromQL, may be a
    whole expression of the intervention series), marked on every time series."""
    return _annotation(
        "Interventions",
        selector,
        "purple",
        title="{{note}}",
        text="intervention on {{date}}: {{manager}} {{team}}",
        tags="team,manager",
    )


def kpi_change_annotation(selector: str) -> _Annotation:
    """KPI changes of the company file matched by *selector*, marked on every time series."""
    return _annotation(
        "KPI changes",
        selector,
        "orange",
        title="{{kpi}} → {{target}}",
        text="KPI change for {{manager}} from {{since}}",
        tags="manager,kpi",
    )


def manager_annotations() -> list[Builder[dashboard_models.AnnotationQuery]]:
    """For one manager ($manager): their own interventions and their team's, and their
    KPI changes."""
    interventions = (
        f'max by (date, manager, note, team) ({_INTERVENTIONS}{{manager="$manager"}})\n'
        f"or (\n"
        f'    max by (date, manager, note, team) ({_INTERVENTIONS}{{manager=""}})\n'
        f"  and on (team)\n"
        f'    max by (team) (salespulse_manager_info{{manager="$manager"}})\n'
        f")"
    )
    kpi_changes = f'max by (manager, kpi, since, target) ({_KPI_CHANGES}{{manager="$manager"}})'
    return [intervention_annotation(interventions), kpi_change_annotation(kpi_changes)]


def team_annotations() -> list[Builder[dashboard_models.AnnotationQuery]]:
    """For one team ($team): the team's interventions and its managers', and its
    managers' KPI changes."""
    interventions = f'max by (date, manager, note, team) ({_INTERVENTIONS}{{team="$team"}})'
    kpi_changes = (
        f"max by (manager, kpi, since, target) ({_KPI_CHANGES})\n"
        f"and on (manager)\n"
        f'max by (manager) (salespulse_manager_info{{team="$team"}})'
    )
    return [intervention_annotation(interventions), kpi_change_annotation(kpi_changes)]
