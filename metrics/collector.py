"""Metrics produced at scrape time from the processor's state.

Nothing is updated per event: a scrape walks the state of the partitions
this worker actively owns and renders it. Counters therefore follow the
event history (a restart continues them, a replay reproduces them), and
standby copies held for other workers are never exported twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from metrics.config_metrics import config_families
from salespulse.settings import Settings
from streams.buckets import HISTOGRAM_BUCKETS
from streams.periods import WINDOWS, period_of
from streams.state import OPEN_OVERDUE_TASK, OPEN_TASK, ManagerState, Record, RejectedState

Series = dict[tuple[str, ...], float]


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    documentation: str
    labels: tuple[str, ...]  # after the leading "manager" label where there is one


# Short cell names in the state -> exported counter families (manager label first).
MANAGER_COUNTERS: dict[str, Family] = {
    "deals_created_total": Family(
        "salespulse_deals_created", "Deals created.", ("pipeline", "product", "channel")
    ),
    "deals_closed_total": Family(
        "salespulse_deals_closed",
        "Deals reaching a won or lost stage, once per deal.",
        ("pipeline", "outcome", "product", "channel"),
    ),
    "deals_won_amount_total": Family(
        "salespulse_deals_won_amount",
        "Sum of the amount of won deals.",
        ("pipeline", "product", "channel"),
    ),
    "funnel_stage_reached_total": Family(
        "salespulse_funnel_stage_reached",
        "Deals reaching a stage, once per deal and stage; skipped stages count as passed.",
        ("pipeline", "stage", "product", "channel"),
    ),
    "segment_deals_closed_total": Family(
        "salespulse_segment_deals_closed",
        "Deals closed, by market segment.",
        ("pipeline", "segment", "outcome"),
    ),
    "segment_won_amount_total": Family(
        "salespulse_segment_won_amount",
        "Sum of the amount of won deals, by market segment.",
        ("pipeline", "segment"),
    ),
    "tasks_created_total": Family("salespulse_tasks_created", "Tasks created.", ("task_type",)),
    "tasks_completed_total": Family(
        "salespulse_tasks_completed",
        "Tasks completed; on_time is false when completed after due_at.",
        ("task_type", "on_time"),
    ),
    "tasks_overdue_total": Family(
        "salespulse_tasks_overdue",
        "Tasks that passed due_at uncompleted, once per task.",
        ("task_type",),
    ),
    "regulation_checks_total": Family(
        "salespulse_regulation_checks",
        "Stage regulations (a task of the required type, due in time) met or missed.",
        ("pipeline", "stage", "result"),
    ),
    "calls_total": Family("salespulse_calls", "Calls ended.", ("direction", "answered")),
    "call_duration_seconds_total": Family(
        "salespulse_call_duration_seconds", "Talk time of answered calls.", ("direction",)
    ),
}

# Cells summed over managers, exported without a manager label but with the source
# partition: a partition moves between workers with its counts, so a worker's series
# never drop (which Prometheus would read as a reset) when it hands one over.
PROCESSOR_COUNTERS: dict[str, Family] = {
    "events_total": Family(
        "salespulse_events",
        "Consumed messages by outcome; each message has exactly one.",
        ("topic", "type", "outcome", "partition"),
    ),
    "events_rejected_total": Family(
        "salespulse_events_rejected",
        "Messages sent to the dead-letter topic, by reason.",
        ("topic", "reason", "partition"),
    ),
    "label_overflow_total": Family(
        "salespulse_label_overflow",
        "Label values reported as 'other' because their label reached its cap.",
        ("label", "partition"),
    ),
}

HISTOGRAMS: dict[str, Family] = {
    "deal_stage_duration_seconds": Family(
        "salespulse_deal_stage_duration_seconds",
        "Time deals spent in a stage, observed when they leave it.",
        ("pipeline", "stage"),
    ),
    "deal_sales_cycle_seconds": Family(
        "salespulse_deal_sales_cycle_seconds",
        "Time from creation to won, over won deals.",
        ("pipeline",),
    ),
    "answered_call_duration_seconds": Family(
        "salespulse_answered_call_duration_seconds",
        "Length of answered calls.",
        ("direction",),
    ),
}

# Period cells -> gauge families (labels after manager and window).
PERIOD_GAUGES: dict[str, Family] = {
    "deals_created": Family(
        "salespulse_period_deals_created", "Deals created in the current period.", ()
    ),
    "deals_closed": Family(
        "salespulse_period_deals_closed", "Deals closed in the current period.", ("outcome",)
    ),
    "won_amount": Family(
        "salespulse_period_won_amount", "Amount of deals won in the current period.", ()
    ),
    "stage_reached": Family(
        "salespulse_period_stage_reached",
        "Deals reaching a stage in the current period, once per deal and stage.",
        ("pipeline", "stage"),
    ),
    "tasks_due": Family(
        "salespulse_period_tasks_due", "Tasks whose due_at falls in the current period.", ()
    ),
    "tasks_overdue": Family(
        "salespulse_period_tasks_overdue",
        "Tasks due in the current period that became overdue, once per task.",
        (),
    ),
    "tasks_completed": Family(
        "salespulse_period_tasks_completed",
        "Tasks completed in the current period.",
        ("on_time",),
    ),
    "regulation_checks": Family(
        "salespulse_period_regulation_checks",
        "Stage regulations of stages entered in the current period, met or missed.",
        ("result",),
    ),
    "calls": Family("salespulse_period_calls", "Calls ended in the current period.", ("answered",)),
    "call_duration_seconds": Family(
        "salespulse_period_call_duration_seconds",
        "Talk time of answered calls in the current period.",
        (),
    ),
}

OPEN_DEALS = Family(
    "salespulse_open_deals", "Open deals by their current stage.", ("pipeline", "stage")
)
OPEN_TASKS = Family("salespulse_open_tasks", "Tasks created and not completed.", ())
OPEN_TASKS_OVERDUE = Family("salespulse_open_tasks_overdue", "Open tasks past their due_at.", ())


def period_label_sets(settings: Settings) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Label values every manager exports for every window, zero when nothing happened."""
    stages = tuple(
        (name, stage) for name, pipeline in settings.pipelines.items() for stage in pipeline.stages
    )
    return {
        "deals_created": ((),),
        "deals_closed": (("won",), ("lost",)),
        "won_amount": ((),),
        "stage_reached": stages,
        "tasks_due": ((),),
        "tasks_overdue": ((),),
        "tasks_completed": (("true",), ("false",)),
        "regulation_checks": (("met",), ("missed",)),
        "calls": (("true",), ("false",)),
        "call_duration_seconds": ((),),
    }


class StateCollector(Collector):
    """Renders state records, plus the configuration, into metric families on every scrape."""

    def __init__(
        self,
        records: Callable[[], Iterable[Record]],
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._records = records
        self._settings = settings
        self._zone = settings.zone
        self._clock = clock
        self._label_sets = period_label_sets(settings)

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on state; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        # Sum by label set: one manager may have records in two partitions (after
        # a partition count change), and Prometheus must see one series.
        counters: dict[str, Series] = {name: {} for name in MANAGER_COUNTERS}
        gauges: dict[str, Series] = {name: {} for name in PERIOD_GAUGES}
        processor: dict[str, Series] = {name: {} for name in PROCESSOR_COUNTERS}
        histograms: dict[str, dict[tuple[str, ...], list[float]]] = {n: {} for n in HISTOGRAMS}
        open_deals: Series = {}
        open_tasks: Series = {}
        open_overdue: Series = {}
        seen_managers: set[str] = set()
        now = self._clock()
        current: list[tuple[str, str]] = [
            (window, period_of(now, window, self._zone).key) for window in WINDOWS
        ]

        for record in self._records():
            if isinstance(record, ManagerState):
                manager = record.manager_id
                seen_managers.add(manager)
                self._counters(record, counters, processor)
                self._periods(record, current, gauges)
                for key, values in record.histograms.items():
                    target = histograms[key[0]].setdefault((manager, *key[1:]), [0.0] * len(values))
                    for index, value in enumerate(values):
                        target[index] += value
                now_open = record.gauges
                _add(open_tasks, (manager,), now_open.get(OPEN_TASK, 0.0))
                _add(open_overdue, (manager,), now_open.get(OPEN_OVERDUE_TASK, 0.0))
                for cell, value in now_open.items():
                    if cell[0] == "open_deals":
                        _add(open_deals, (manager, *cell[1:]), value)
            elif isinstance(record, RejectedState):
                for cell, value in record.counters.items():
                    if cell[0] in processor:
                        _add(processor[cell[0]], (*cell[1:], str(record.partition)), value)

        for name, series in counters.items():
            spec = MANAGER_COUNTERS[name]
            yield _family(CounterMetricFamily, spec, ("manager", *spec.labels), series)
        for name, series in gauges.items():
            spec = PERIOD_GAUGES[name]
            yield _family(GaugeMetricFamily, spec, ("manager", "window", *spec.labels), series)
        for name, series in processor.items():
            spec = PROCESSOR_COUNTERS[name]
            yield _family(CounterMetricFamily, spec, spec.labels, series)
        for name, buckets in histograms.items():
            yield _histogram(HISTOGRAMS[name], HISTOGRAM_BUCKETS[name], buckets)
        yield _family(GaugeMetricFamily, OPEN_DEALS, ("manager", *OPEN_DEALS.labels), open_deals)
        yield _family(GaugeMetricFamily, OPEN_TASKS, ("manager",), open_tasks)
        yield _family(GaugeMetricFamily, OPEN_TASKS_OVERDUE, ("manager",), open_overdue)
        yield from config_families(self._settings, seen_managers, now.astimezone(self._zone).date())

    @staticmethod
    def _counters(
        record: ManagerState, counters: dict[str, Series], processor: dict[str, Series]
    ) -> None:
        manager = record.manager_id
        for cell, value in record.counters.items():
            name = cell[0]
            if name in counters:
                _add(counters[name], (manager, *cell[1:]), value)
            elif name in processor:
                _add(processor[name], (*cell[1:], str(record.partition)), value)

    def _periods(
        self, record: ManagerState, current: list[tuple[str, str]], gauges: dict[str, Series]
    ) -> None:
        manager = record.manager_id
        for window, key in current:
            period = record.periods.get(key)
            cells = period.cells if period is not None else {}
            for name, label_sets in self._label_sets.items():
                series = gauges[name]
                for labels in label_sets:
                    _add(series, (manager, window, *labels), cells.get((name, *labels), 0.0))


def _add(series: Series, labels: tuple[str, ...], value: float) -> None:
    series[labels] = series.get(labels, 0.0) + value


def _family(
    kind: type[CounterMetricFamily] | type[GaugeMetricFamily],
    spec: Family,
    labels: tuple[str, ...],
    series: Series,
) -> Metric:
    family = kind(spec.name, spec.documentation, labels=list(labels))
    for values, value in sorted(series.items()):
        family.add_metric(list(values), value)
    return family


def _histogram(
    spec: Family, bounds: tuple[float, ...], series: dict[tuple[str, ...], list[float]]
) -> Metric:
    family = HistogramMetricFamily(spec.name, spec.documentation, labels=["manager", *spec.labels])
    for labels, values in sorted(series.items()):
        cumulative, buckets = 0.0, []
        for bound, count in zip(bounds, values[: len(bounds)], strict=True):
            cumulative += count
            buckets.append((_le(bound), cumulative))
        buckets.append(("+Inf", values[-1]))
        family.add_metric(list(labels), buckets, values[-2])
    return family


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else repr(bound)
