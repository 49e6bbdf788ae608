"""The processor's state as Prometheus text, written as it is read, a family at a time.

A scrape of a large company is hundreds of thousands of series (about 130 a
manager, and each team's crossed families). Building them as prometheus_client
metric objects first took seconds of the worker's only event loop and memory in proportion to all of
them. Here each family is formatted straight from the records, manager by
manager, and handed out in chunks: the endpoint sends each chunk before the
next is made (the worker goes on processing in between), and nothing larger
than a chunk is ever held.

A chunk is never cut inside one manager's series of a family, so a family
shows each manager consistently; different families may be a batch apart,
as two scrapes would be.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from prometheus_client.utils import floatToGoString

from metrics.annotations import FAMILIES as MARKER_FAMILIES
from metrics.annotations import markers
from metrics.collector import (
    COUNTERS,
    HISTOGRAMS,
    OPEN_DEALS,
    OPEN_DEALS_AMOUNT,
    OPEN_DEALS_BY_AGE,
    OPEN_TASKS,
    OPEN_TASKS_OVERDUE,
    PERIOD_GAUGES,
    PROCESSOR_COUNTERS,
    STUCK_DEALS,
    TEAM_PERIOD_GAUGES,
    CellFamilies,
    Family,
    HistogramFamilies,
    period_label_sets,
)
from salespulse.settings import KpiTargets, MonthlyPlan, Settings
from streams.buckets import HISTOGRAM_BUCKETS, STAGE_DURATION_BUCKETS
from streams.cells import Cells, metric_cells, slot_of
from streams.entities import OPEN_DEAL_AGE, OPEN_OVERDUE_TASK, OPEN_TASK
from streams.entities import OPEN_DEALS_AMOUNT as OPEN_DEALS_AMOUNT_CELLS
from streams.periods import WINDOWS, period_of
from streams.state import ManagerState, Record, RejectedState

CHUNK_CHARACTERS = 256 * 1024

Labels = tuple[str, ...]


def escape(value: str) -> str:
    """A label value as the text format wants it."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


# A scrape writes few distinct values many times (a month at 1,000 managers: 1,800
# in 122,000, a third of them 0), so each is formatted once: that render takes
# 0.14 s of CPU instead of 0.16, and 1.45 s instead of 1.80 at 10,000 managers.
_NUMBER_TEXT: dict[float, str] = {}
_NUMBER_TEXT_LIMIT = 65_536
# 0.0 and -0.0 are one dict key but two texts; NaN is a key nothing finds again.
_ZERO_TEXT = str(floatToGoString(0.0))  # type: ignore[no-untyped-call]
_NEGATIVE_ZERO_TEXT = str(floatToGoString(-0.0))  # type: ignore[no-untyped-call]


def number(value: float) -> str:
    """A sample value exactly as prometheus_client writes it (Go's float formatting)."""
    if not value:
        return _NEGATIVE_ZERO_TEXT if math.copysign(1.0, value) < 0 else _ZERO_TEXT
    text = _NUMBER_TEXT.get(value)
    if text is None:
        text = str(floatToGoString(value))  # type: ignore[no-untyped-call]
        if value == value and len(_NUMBER_TEXT) < _NUMBER_TEXT_LIMIT:
            _NUMBER_TEXT[value] = text
    return text


_LABEL_TEXT: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
_LABEL_TEXT_LIMIT = 100_000  # label sets repeat across managers; hostile ones only refill it


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """``name="value",...``, each distinct set formatted once (a scrape repeats them for
    every manager)."""
    key = (names, values)
    text = _LABEL_TEXT.get(key)
    if text is None:
        if len(_LABEL_TEXT) >= _LABEL_TEXT_LIMIT:
            _LABEL_TEXT.clear()
        text = _LABEL_TEXT[key] = ",".join(
            f'{name}="{escape(value)}"' for name, value in zip(names, values, strict=True)
        )
    return text


def _header(name: str, documentation: str, kind: str) -> str:
    return f"# HELP {name} {documentation}\n# TYPE {name} {kind}\n"


class StateExposition:
    """Renders state records and the company's configuration as text exposition."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._zone = settings.zone
        self._label_sets = period_label_sets(settings)
        self._teams = {
            manager_id: manager.team for manager_id, manager in settings.managers.items()
        }
        self._targets_on: tuple[date, str] | None = None
        self._plan_lines = "".join(self._plan_series())  # plans do not change while running
        self._marker_lines = "".join(self._marker_series())  # nor do interventions
        self._topics = {
            "deals": settings.topic_deals,
            "tasks": settings.topic_tasks,
            "calls": settings.topic_calls,
        }

    def text(self, records: Iterable[Record], now: datetime) -> str:
        return "".join(self.chunks(records, now))

    def chunks(self, records: Iterable[Record], now: datetime) -> Iterator[str]:
        """The exposition in pieces of about CHUNK_CHARACTERS."""
        managers: dict[str, list[ManagerState]] = {}
        rejected: list[RejectedState] = []
        newest: dict[tuple[str, int], float] = {}  # (stream, partition) -> event time
        for record in records:
            if isinstance(record, ManagerState):
                managers.setdefault(record.manager_id, []).append(record)
                for stream, at in record.stream_watermarks.items():
                    key = (stream, record.partition)
                    if at > newest.get(key, at - 1.0):
                        newest[key] = at
            elif isinstance(record, RejectedState):
                rejected.append(record)
        # One manager may have records in two partitions (after a partition count
        # change): Prometheus must still see one series, the sum.
        teams = self._teams
        ordered = [
            _Manager(f'manager="{escape(m)}"', teams.get(m, ""), managers[m])
            for m in sorted(managers)
        ]
        buffer: list[str] = []
        size = 0
        for piece in self._pieces(ordered, rejected, sorted(managers), newest, now):
            buffer.append(piece)
            size += len(piece)
            if size >= CHUNK_CHARACTERS:
                yield "".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer)

    def _pieces(
        self,
        managers: list[_Manager],
        rejected: list[RejectedState],
        seen: list[str],
        newest: dict[tuple[str, int], float],
        now: datetime,
    ) -> Iterator[str]:
        """Headers, and each manager's lines of a family, in exposition order."""
        for spec in COUNTERS:
            yield from _counters(managers, spec)
        yield from self._periods(managers, now)
        yield from self._team_periods(managers, now)
        yield from self._processor_counters(managers, rejected)
        for histogram in HISTOGRAMS:
            yield from _histograms(managers, histogram)
        yield from _gauges(managers, OPEN_DEALS, "open_deals")
        yield from _gauges(managers, OPEN_DEALS_AMOUNT, OPEN_DEALS_AMOUNT_CELLS)
        yield from _gauges(managers, STUCK_DEALS, "stuck_deals")
        yield from _open_deal_ages(managers)
        for family, cell in ((OPEN_TASKS, OPEN_TASK), (OPEN_TASKS_OVERDUE, OPEN_OVERDUE_TASK)):
            yield _header(family.name, family.documentation, "gauge")
            yield "".join(
                f"{family.name}{{{manager.label}}} "
                f"{number(sum(state.gauges.get(cell, 0.0) for state in manager.states))}\n"
                for manager in managers
            )
        yield from self._configuration(seen, now)
        yield from self._freshness(newest)

    def _freshness(self, newest: dict[tuple[str, int], float]) -> Iterator[str]:
        """How far each source partition's events have been applied, from the walk that
        renders the rest (a second walk of the state per scrape would double its cost)."""
        name = "salespulse_newest_event_timestamp_seconds"
        yield _header(
            name,
            "Event time (occurred_at) of the newest event applied, per source partition.",
            "gauge",
        )
        rows = sorted(
            (self._topics.get(stream, stream), partition, at)
            for (stream, partition), at in newest.items()
        )
        yield "".join(
            f'{name}{{topic="{escape(topic)}",partition="{partition}"}} {number(at)}\n'
            for topic, partition, at in rows
        )

    def _periods(self, managers: list[_Manager], now: datetime) -> Iterator[str]:
        """The period gauges: every manager, window and known label set, zeros included.

        Each manager's open periods are read once, into one row of values laid
        out by (window, family, labels), while the first family is written (so
        the reading is spread over the scrape's chunks); the other families read
        the rows. Looking each cell up in each family would search every period
        once per series.
        """
        current = [(window, period_of(now, window, self._zone).key) for window in WINDOWS]
        layout: dict[int, int] = {}  # slot of a period cell -> its column within a window
        families: list[tuple[Family, list[int], list[Labels]]] = []
        for short, family in PERIOD_GAUGES.items():
            columns = []
            for labels in self._label_sets[short]:
                columns.append(layout.setdefault(slot_of((short, *labels)), len(layout)))
            families.append((family, columns, list(self._label_sets[short])))
        width = len(layout)
        rows: list[array[float]] = []
        for index, (family, columns, label_sets) in enumerate(families):
            yield _header(family.name, family.documentation, "gauge")
            names = ("window", *family.labels)
            # (column in a row, the line's text after the manager label up to the value)
            series = [
                (offset * width + column, f",{_labels(names, (window, *labels))}}} ")
                for offset, (window, _) in enumerate(current)
                for column, labels in zip(columns, label_sets, strict=True)
            ]
            name = family.name
            for position, manager in enumerate(managers):
                if index == 0:  # rows are made while the first family is written
                    rows.append(_period_row(manager.states, current, layout, width))
                row = rows[position]
                head = f"{name}{{{manager.label}"
                yield "".join(f"{head}{tail}{number(row[column])}\n" for column, tail in series)

    def _team_periods(self, managers: list[_Manager], now: datetime) -> Iterator[str]:
        """The team period gauges: per team, every label set the team has in any current
        period, in every window, zero where that window holds none."""
        current = [(window, period_of(now, window, self._zone).key) for window in WINDOWS]
        for short, family in TEAM_PERIOD_GAUGES.items():
            teams: dict[str, dict[tuple[str, Labels], float]] = {}
            for manager in managers:
                sums = teams.setdefault(manager.team, {})
                for window, key in current:
                    for state in manager.states:
                        period = state.periods.get(key)
                        if period is None:
                            continue
                        for cell, value in period.cells.of_metric(short):
                            at = (window, cell[1:])
                            sums[at] = sums.get(at, 0.0) + value
            yield _header(family.name, family.documentation, "gauge")
            names = ("window", *family.labels)
            for team in sorted(teams):
                sums = teams[team]
                label_sets = sorted({labels for _, labels in sums})
                head = f'{family.name}{{team="{escape(team)}",'
                yield "".join(
                    f"{head}{_labels(names, (window, *labels))}}} "
                    f"{number(sums.get((window, labels), 0.0))}\n"
                    for labels in label_sets
                    for window, _ in current
                )

    @staticmethod
    def _processor_counters(
        managers: list[_Manager], rejected: list[RejectedState]
    ) -> Iterator[str]:
        """Summed over managers, by the source partition (see metrics.collector)."""
        totals: dict[str, dict[Labels, float]] = {name: {} for name in PROCESSOR_COUNTERS}
        for manager in managers:
            for state in manager.states:
                _sum_processor(totals, state.counters, str(state.partition))
        for record in rejected:
            _sum_processor(totals, record.counters, str(record.partition))
        for short, spec in PROCESSOR_COUNTERS.items():
            name = spec.name + "_total"
            yield _header(name, spec.documentation, "counter")
            yield "".join(
                f"{name}{{{_labels(spec.labels, labels)}}} {number(value)}\n"
                for labels, value in sorted(totals[short].items())
            )

    def _configuration(self, seen: list[str], now: datetime) -> Iterator[str]:
        """KPI targets, managers' names and teams, and the funnels' stage order."""
        settings = self._settings
        name = "salespulse_kpi_target"
        yield _header(
            name,
            'KPI targets; manager="" is the team default, others are effective per manager.',
            "gauge",
        )
        today = now.astimezone(self._zone).date()
        if self._targets_on is None or self._targets_on[0] != today:
            lines = [
                f'{name}{{kpi="{kpi}",manager=""}} {number(value)}\n'
                for kpi, value in _targets(settings.kpi)
            ]
            for manager_id, manager in sorted(settings.managers.items()):
                escaped = escape(manager_id)
                lines.extend(
                    f'{name}{{kpi="{kpi}",manager="{escaped}"}} {number(value)}\n'
                    for kpi, value in _targets(manager.kpi_on(today, settings.kpi))
                )
            self._targets_on = (today, "".join(lines))  # targets change with the day only
        yield self._targets_on[1]
        yield _header(
            "salespulse_plan_target",
            'Monthly plan; manager="" is the team default, others are effective per manager.',
            "gauge",
        )
        yield self._plan_lines
        yield self._marker_lines
        yield from self._elapsed(now)
        name = "salespulse_manager_info"
        yield _header(
            name, "Managers known from the configuration or from events: name and team.", "gauge"
        )
        configured = settings.managers
        lines = []
        for manager_id in sorted(set(configured) | set(seen)):
            known = configured.get(manager_id)
            who, team = (manager_id, "") if known is None else (known.name, known.team)
            lines.append(
                f'{name}{{manager="{escape(manager_id)}",name="{escape(who)}",'
                f'team="{escape(team)}"}} 1.0\n'
            )
        yield "".join(lines)
        name = "salespulse_funnel_stage_info"
        yield _header(
            name,
            "The ordered stages of each funnel, for stage-to-stage conversion in PromQL.",
            "gauge",
        )
        lines = []
        for pipeline_name, pipeline in sorted(settings.pipelines.items()):
            previous = ""
            for index, stage in enumerate(pipeline.stages):
                lines.append(
                    f'{name}{{index="{index}",pipeline="{escape(pipeline_name)}",'
                    f'previous_stage="{escape(previous)}",stage="{escape(stage)}"}} 1.0\n'
                )
                previous = stage
        yield "".join(lines)
        yield from self._follows()

    def _follows(self) -> Iterator[str]:
        """Which open stages lie at or after each open stage, per team, for the forecast.

        A deal's remaining time to close is the sum of the team's usual times in
        the open stages still ahead of it. PromQL cannot cross every team with
        every pair of stages (no join is many-to-many), so the pairs are
        exported per team: the configured teams and "" (managers known only
        from events), one series per team and pair.
        """
        name = "salespulse_funnel_stage_follows"
        yield _header(
            name,
            "1 for every open stage later_stage at or after stage in the funnel, per team.",
            "gauge",
        )
        teams = sorted({*self._teams.values(), ""})
        lines: list[str] = []
        for pipeline_name, pipeline in sorted(self._settings.pipelines.items()):
            open_stages = [stage for stage in pipeline.stages if stage not in pipeline.won]
            head = f'pipeline="{escape(pipeline_name)}"'
            for position, stage in enumerate(open_stages):
                for later in open_stages[position:]:
                    tail = f'later_stage="{escape(later)}",{head},stage="{escape(stage)}"'
                    lines.extend(f'{name}{{{tail},team="{escape(team)}"}} 1.0\n' for team in teams)
        yield "".join(lines)

    def _plan_series(self) -> Iterator[str]:
        """Monthly plans: the team default and each configured manager's effective plan."""
        settings = self._settings
        name = "salespulse_plan_target"
        for plan, value in _targets(settings.plan):
            yield f'{name}{{manager="",plan="{plan}"}} {number(value)}\n'
        for manager_id, manager in sorted(settings.managers.items()):
            escaped = escape(manager_id)
            for plan, value in _targets(manager.plan.merged_over(settings.plan)):
                yield f'{name}{{manager="{escaped}",plan="{plan}"}} {number(value)}\n'

    def _marker_series(self) -> Iterator[str]:
        """Interventions and KPI changes, for the dashboards' annotations."""
        found = markers(self._settings)
        for family, documentation in MARKER_FAMILIES.items():
            yield _header(family, documentation, "gauge")
            for marker in found:
                if marker.family == family:
                    names = tuple(name for name, _ in marker.labels)
                    values = tuple(value for _, value in marker.labels)
                    yield f"{family}{{{_labels(names, values)}}} {number(marker.at)}\n"

    def _elapsed(self, now: datetime) -> Iterator[str]:
        """How much of each current period has passed, for the pace of the monthly plan.

        Exported rather than computed in PromQL because the period is the company's
        calendar one: a month in a zone with daylight saving is not a whole number
        of days of UTC, and PromQL's day_of_month() knows UTC only.
        """
        name = "salespulse_calendar_elapsed_ratio"
        yield _header(
            name, "Share of the current day, week and month that has passed, 0 to 1.", "gauge"
        )
        lines = []
        for window in WINDOWS:
            period = period_of(now, window, self._zone)
            span = period.end_epoch - period.start.timestamp()
            passed = (now.timestamp() - period.start.timestamp()) / span
            lines.append(f'{name}{{window="{window}"}} {number(min(1.0, max(0.0, passed)))}\n')
        yield "".join(lines)
        name = "salespulse_calendar_month_seconds_left"
        yield _header(
            name,
            "Seconds until the end of the current calendar month, for the forecast's horizon.",
            "gauge",
        )
        month = period_of(now, "month", self._zone)
        yield f"{name} {number(max(0.0, month.end_epoch - now.timestamp()))}\n"


@dataclass(frozen=True, slots=True)
class _Manager:
    label: str  # manager="...", escaped
    team: str
    states: list[ManagerState]


def _counters(managers: list[_Manager], spec: CellFamilies) -> Iterator[str]:
    """A counter family per manager (its kept labels) and per team (all labels).

    A scrape visits every counter cell of every manager, so this loop is its
    hot path: cells are summed into lists by their dense number within the
    metric (per team) and by the number of the labels a manager's series
    keeps, and turned into labels once per number.
    """
    family = spec.manager
    teams: dict[str, list[float | None]] = {}
    kept_of: list[int] = []  # cell number -> number of the labels a manager's series keeps
    kept_labels: list[Labels] = []  # that number -> the labels
    numbers: dict[Labels, int] = {}
    if family is not None:
        name = family.name + "_total"
        yield _header(name, family.documentation, "counter")
    for manager in managers:
        mine: dict[int, float] = {}
        team = teams.get(manager.team)
        if team is None:
            team = teams[manager.team] = []
        for state in manager.states:
            cell_numbers, values = state.counters.numbers_of_metric(spec.cell)
            if cell_numbers and cell_numbers[-1] >= len(kept_of):
                _learn(spec, kept_of, kept_labels, numbers)
            if len(team) < len(kept_of):
                team.extend([None] * (len(kept_of) - len(team)))
            for number_, value in zip(cell_numbers, values):  # noqa: B905 (equal by construction)
                sum_ = team[number_]
                team[number_] = value if sum_ is None else sum_ + value
                kept = kept_of[number_]
                mine[kept] = mine.get(kept, 0.0) + value
        if family is not None and mine:
            head = f"{name}{{{manager.label}"
            yield "".join(
                f"{head},{_labels(family.labels, kept_labels[kept])}}} {number(value)}\n"
                if family.labels
                else f"{head}}} {number(value)}\n"
                for kept, value in sorted(mine.items(), key=lambda item: kept_labels[item[0]])
            )
    if spec.team is not None:
        cells = metric_cells(spec.cell)
        yield from _team_counter(
            spec.team,
            {
                team: {
                    cells[number_][1:]: value
                    for number_, value in enumerate(series)
                    if value is not None
                }
                for team, series in teams.items()
            },
        )


def _learn(
    spec: CellFamilies, kept_of: list[int], kept_labels: list[Labels], numbers: dict[Labels, int]
) -> None:
    """Extend *kept_of* to every cell of the metric known now (cells are added as
    events come, also between two chunks of a scrape)."""
    for cell in metric_cells(spec.cell)[len(kept_of) :]:
        labels = spec.manager_labels(cell[1:])
        kept = numbers.get(labels)
        if kept is None:
            kept = numbers[labels] = len(kept_labels)
            kept_labels.append(labels)
        kept_of.append(kept)


def _team_counter(family: Family, teams: dict[str, dict[Labels, float]]) -> Iterator[str]:
    name = family.name + "_total"
    yield _header(name, family.documentation, "counter")
    for team in sorted(teams):
        series = teams[team]
        if series:
            head = f'team="{escape(team)}"'
            yield "".join(
                f"{name}{{{head},{_labels(family.labels, labels)}}} {number(value)}\n"
                for labels, value in sorted(series.items())
            )


def _histograms(managers: list[_Manager], spec: HistogramFamilies) -> Iterator[str]:
    """Sum and count per manager (a summary without quantiles), buckets per team."""
    short = spec.cell
    teams: dict[str, dict[Labels, list[float]]] = {}
    family = spec.manager
    if family is not None:
        yield _header(family.name, family.documentation, "summary")
    for manager in managers:
        mine: dict[Labels, list[float]] = {}
        team = teams.setdefault(manager.team, {})
        for state in manager.states:
            for key, values in state.histograms.items():
                if key[0] == short:
                    _add_to(mine, key[1:], values)
                    _add_to(team, key[1:], values)
        if family is not None and mine:
            lines = []
            for labels, values in sorted(mine.items()):
                rest = _labels(family.labels, labels)
                head = f"{manager.label},{rest}" if rest else manager.label
                lines.append(f"{family.name}_sum{{{head}}} {number(values[-2])}\n")
                lines.append(f"{family.name}_count{{{head}}} {number(values[-1])}\n")
            yield "".join(lines)
    bounds = HISTOGRAM_BUCKETS[short]
    edges = [_le(bound) for bound in bounds]
    name = spec.team.name
    yield _header(name, spec.team.documentation, "histogram")
    for team_name in sorted(teams):
        lines = []
        for labels, values in sorted(teams[team_name].items()):
            head = f'team="{escape(team_name)}",{_labels(spec.team.labels, labels)}'
            cumulative = 0.0
            for edge, count in zip(edges, values[: len(bounds)], strict=True):
                cumulative += count
                lines.append(f'{name}_bucket{{{head},le="{edge}"}} {number(cumulative)}\n')
            lines.append(f'{name}_bucket{{{head},le="+Inf"}} {number(values[-1])}\n')
            lines.append(f"{name}_count{{{head}}} {number(values[-1])}\n")
            lines.append(f"{name}_sum{{{head}}} {number(values[-2])}\n")
        yield "".join(lines)


def _period_row(
    states: list[ManagerState],
    current: Sequence[tuple[str, str]],
    layout: dict[int, int],
    width: int,
) -> array[float]:
    """One manager's period values: for each window in turn, one column per known cell."""
    row = array("d", bytes(8 * width * len(current)))
    for offset, (_, key) in enumerate(current):
        base = offset * width
        for state in states:
            period = state.periods.get(key)
            if period is None:
                continue
            slots, values = period.cells.slots_and_values()
            for slot, value in zip(slots, values, strict=True):
                column = layout.get(slot)
                if column is not None:
                    row[base + column] += value
    return row


def _add_to(series: dict[Labels, list[float]], labels: Labels, values: list[float]) -> None:
    target = series.get(labels)
    if target is None:
        series[labels] = list(values)
    else:
        for index, value in enumerate(values):
            target[index] += value


def _gauges(managers: list[_Manager], family: Family, short: str) -> Iterator[str]:
    """A gauge family of the cells named *short* in each manager's current-state gauges."""
    yield _header(family.name, family.documentation, "gauge")
    for manager in managers:
        series: dict[Labels, float] = {}
        for state in manager.states:
            for cell, value in state.gauges.of_metric(short):
                series[cell[1:]] = series.get(cell[1:], 0.0) + value
        if series:
            yield "".join(
                f"{family.name}{{{manager.label},{_labels(family.labels, labels)}}} "
                f"{number(value)}\n"
                for labels, value in sorted(series.items())
            )


def _open_deal_ages(managers: list[_Manager]) -> Iterator[str]:
    """Open deals per team and stage, cumulative over the bands of their time in it."""
    family = OPEN_DEALS_BY_AGE
    bands = len(STAGE_DURATION_BUCKETS) + 1
    teams: dict[str, dict[Labels, list[float]]] = {}
    for manager in managers:
        team = teams.setdefault(manager.team, {})
        for state in manager.states:
            for cell, value in state.gauges.of_metric(OPEN_DEAL_AGE):
                counts = team.get(cell[1:3])
                if counts is None:
                    counts = team[cell[1:3]] = [0.0] * bands
                counts[min(int(cell[3]), bands - 1)] += value
    edges = [*(_le(bound) for bound in STAGE_DURATION_BUCKETS), "+Inf"]
    yield _header(family.name, family.documentation, "gauge")
    for team_name in sorted(teams):
        lines = []
        for labels, counts in sorted(teams[team_name].items()):
            head = f'team="{escape(team_name)}",{_labels(family.labels, labels)}'
            cumulative = 0.0
            for edge, count in zip(edges, counts, strict=True):
                cumulative += count
                lines.append(f'{family.name}{{{head},le="{edge}"}} {number(cumulative)}\n')
        yield "".join(lines)


def _sum_processor(totals: dict[str, dict[Labels, float]], cells: Cells, partition: str) -> None:
    for short, series in totals.items():
        for cell, value in cells.of_metric(short):
            labels = (*cell[1:], partition)
            series[labels] = series.get(labels, 0.0) + value


def _targets(targets: KpiTargets | MonthlyPlan) -> Iterator[tuple[str, float]]:
    for name, value in targets.model_dump().items():
        if value is not None:
            yield name, float(value)


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else repr(bound)
