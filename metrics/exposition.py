"""The processor's state as Prometheus text, written as it is read, a family at a time.

A scrape of a large company is hundreds of thousands of series (about 300 a
manager). Building them as prometheus_client metric objects first took
seconds of the worker's only event loop and memory in proportion to all of
them. Here each family is formatted straight from the records, manager by
manager, and handed out in chunks: the endpoint sends each chunk before the
next is made (the worker goes on processing in between), and nothing larger
than a chunk is ever held.

A chunk is never cut inside one manager's series of a family, so a family
shows each manager consistently; different families may be a batch apart,
as two scrapes would be.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime

from metrics.collector import (
    HISTOGRAMS,
    MANAGER_COUNTERS,
    OPEN_DEALS,
    OPEN_TASKS,
    OPEN_TASKS_OVERDUE,
    PERIOD_GAUGES,
    PROCESSOR_COUNTERS,
    Family,
    period_label_sets,
)
from salespulse.settings import KpiTargets, Settings
from streams.buckets import HISTOGRAM_BUCKETS
from streams.periods import WINDOWS, period_of
from streams.state import OPEN_OVERDUE_TASK, OPEN_TASK, ManagerState, Record, RejectedState

CHUNK_CHARACTERS = 256 * 1024

Labels = tuple[str, ...]


def escape(value: str) -> str:
    """A label value as the text format wants it."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def number(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's float formatting)."""
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "+Inf"
    if value == float("-inf"):
        return "-Inf"
    text = repr(float(value))
    dot = text.find(".")
    if value > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _labels(names: Iterable[str], values: Iterable[str]) -> str:
    return ",".join(f'{name}="{escape(value)}"' for name, value in zip(names, values, strict=True))


def _header(name: str, documentation: str, kind: str) -> str:
    return f"# HELP {name} {documentation}\n# TYPE {name} {kind}\n"


class StateExposition:
    """Renders state records and the company's configuration as text exposition."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._zone = settings.zone
        self._label_sets = period_label_sets(settings)
        self._targets_on: tuple[date, str] | None = None

    def text(self, records: Iterable[Record], now: datetime) -> str:
        return "".join(self.chunks(records, now))

    def chunks(self, records: Iterable[Record], now: datetime) -> Iterator[str]:
        """The exposition in pieces of about CHUNK_CHARACTERS."""
        managers: dict[str, list[ManagerState]] = {}
        rejected: list[RejectedState] = []
        for record in records:
            if isinstance(record, ManagerState):
                managers.setdefault(record.manager_id, []).append(record)
            elif isinstance(record, RejectedState):
                rejected.append(record)
        # One manager may have records in two partitions (after a partition count
        # change): Prometheus must still see one series, the sum.
        ordered = [(f'manager="{escape(m)}"', managers[m]) for m in sorted(managers)]
        buffer: list[str] = []
        size = 0
        for piece in self._pieces(ordered, rejected, sorted(managers), now):
            buffer.append(piece)
            size += len(piece)
            if size >= CHUNK_CHARACTERS:
                yield "".join(buffer)
                buffer, size = [], 0
        if buffer:
            yield "".join(buffer)

    def _pieces(
        self,
        managers: list[tuple[str, list[ManagerState]]],
        rejected: list[RejectedState],
        seen: list[str],
        now: datetime,
    ) -> Iterator[str]:
        """Headers, and each manager's lines of a family, in exposition order."""
        for short, spec in MANAGER_COUNTERS.items():
            yield from self._family(managers, spec, "counter", "_total", "counters", short)
        current = [(window, period_of(now, window, self._zone).key) for window in WINDOWS]
        for short, spec in PERIOD_GAUGES.items():
            yield _header(spec.name, spec.documentation, "gauge")
            names = ("window", *spec.labels)
            sets = self._label_sets[short]
            for manager, states in managers:
                lines = []
                for window, key in current:
                    for labels in sets:
                        value = 0.0
                        for state in states:
                            period = state.periods.get(key)
                            if period is not None:
                                value += period.cells.get((short, *labels), 0.0)
                        rest = _labels(names, (window, *labels))
                        lines.append(f"{spec.name}{{{manager},{rest}}} {number(value)}\n")
                yield "".join(lines)
        yield from self._processor_counters(managers, rejected)
        for short, spec in HISTOGRAMS.items():
            yield from self._histogram(managers, short, spec)
        yield from self._family(managers, OPEN_DEALS, "gauge", "", "gauges", "open_deals")
        for spec, cell in ((OPEN_TASKS, OPEN_TASK), (OPEN_TASKS_OVERDUE, OPEN_OVERDUE_TASK)):
            yield _header(spec.name, spec.documentation, "gauge")
            yield "".join(
                f"{spec.name}{{{manager}}} "
                f"{number(sum(state.gauges.get(cell, 0.0) for state in states))}\n"
                for manager, states in managers
            )
        yield from self._configuration(seen, now)

    @staticmethod
    def _family(
        managers: list[tuple[str, list[ManagerState]]],
        spec: Family,
        kind: str,
        suffix: str,
        source: str,
        short: str,
    ) -> Iterator[str]:
        """A family of the cells named *short* in each manager's *source* (counters, gauges)."""
        name = spec.name + suffix
        yield _header(name, spec.documentation, kind)
        for manager, states in managers:
            series = _series(states, source, short)
            if series:
                yield "".join(
                    f"{name}{{{manager},{_labels(spec.labels, labels)}}} {number(value)}\n"
                    if labels
                    else f"{name}{{{manager}}} {number(value)}\n"
                    for labels, value in sorted(series.items())
                )

    @staticmethod
    def _processor_counters(
        managers: list[tuple[str, list[ManagerState]]], rejected: list[RejectedState]
    ) -> Iterator[str]:
        """Summed over managers, by the source partition (see metrics.collector)."""
        totals: dict[str, dict[Labels, float]] = {name: {} for name in PROCESSOR_COUNTERS}
        for _, states in managers:
            for state in states:
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

    @staticmethod
    def _histogram(
        managers: list[tuple[str, list[ManagerState]]], short: str, spec: Family
    ) -> Iterator[str]:
        bounds = HISTOGRAM_BUCKETS[short]
        edges = [_le(bound) for bound in bounds]
        yield _header(spec.name, spec.documentation, "histogram")
        for manager, states in managers:
            series: dict[Labels, list[float]] = {}
            for state in states:
                for key, values in state.histograms.items():
                    if key[0] == short:
                        target = series.setdefault(key[1:], [0.0] * len(values))
                        for index, value in enumerate(values):
                            target[index] += value
            lines = []
            for labels, values in sorted(series.items()):
                rest = _labels(spec.labels, labels)
                head = f"{manager},{rest}" if rest else manager
                cumulative = 0.0
                for edge, count in zip(edges, values[: len(bounds)], strict=True):
                    cumulative += count
                    lines.append(f'{spec.name}_bucket{{{head},le="{edge}"}} {number(cumulative)}\n')
                lines.append(f'{spec.name}_bucket{{{head},le="+Inf"}} {number(values[-1])}\n')
                lines.append(f"{spec.name}_count{{{head}}} {number(values[-1])}\n")
                lines.append(f"{spec.name}_sum{{{head}}} {number(values[-2])}\n")
            yield "".join(lines)

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


def _series(states: list[ManagerState], source: str, short: str) -> dict[Labels, float]:
    summed: dict[Labels, float] = {}
    for state in states:
        cells: Mapping[Labels, float] = getattr(state, source)
        for cell, value in cells.items():
            if cell[0] == short:
                labels = cell[1:]
                summed[labels] = summed.get(labels, 0.0) + value
    return summed


def _sum_processor(
    totals: dict[str, dict[Labels, float]], cells: Mapping[Labels, float], partition: str
) -> None:
    for cell, value in cells.items():
        series = totals.get(cell[0])
        if series is not None:
            labels = (*cell[1:], partition)
            series[labels] = series.get(labels, 0.0) + value


def _targets(kpi: KpiTargets) -> Iterator[tuple[str, float]]:
    for name, value in kpi.model_dump().items():
        if value is not None:
            yield name, float(value)


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else repr(bound)
