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
from zoneinfo import ZoneInfo

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.periods import WINDOWS, period_of
from streams.state import ManagerState, Record, RejectedState


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
    "calls_total": Family("salespulse_calls", "Calls ended.", ("direction", "answered")),
    "call_duration_seconds_total": Family(
        "salespulse_call_duration_seconds", "Talk time of answered calls.", ("direction",)
    ),
}

# Cells summed over managers and partitions, exported without a manager label.
PROCESSOR_COUNTERS: dict[str, Family] = {
    "events_total": Family(
        "salespulse_events",
        "Consumed messages by outcome; each message has exactly one.",
        ("topic", "type", "outcome"),
    ),
    "events_rejected_total": Family(
        "salespulse_events_rejected",
        "Messages sent to the dead-letter topic, by reason.",
        ("topic", "reason"),
    ),
}

# Period cells -> gauge families; each label tuple lists the values always exported.
PERIOD_GAUGES: dict[str, tuple[Family, tuple[tuple[str, ...], ...]]] = {
    "deals_created": (
        Family("salespulse_period_deals_created", "Deals created in the current period.", ()),
        ((),),
    ),
    "deals_closed": (
        Family(
            "salespulse_period_deals_closed", "Deals closed in the current period.", ("outcome",)
        ),
        (("won",), ("lost",)),
    ),
    "won_amount": (
        Family("salespulse_period_won_amount", "Amount of deals won in the current period.", ()),
        ((),),
    ),
    "calls": (
        Family("salespulse_period_calls", "Calls ended in the current period.", ("answered",)),
        (("true",), ("false",)),
    ),
    "call_duration_seconds": (
        Family(
            "salespulse_period_call_duration_seconds",
            "Talk time of answered calls in the current period.",
            (),
        ),
        ((),),
    ),
}


class StateCollector(Collector):
    """Renders state records into metric families on every scrape."""

    def __init__(
        self,
        records: Callable[[], Iterable[Record]],
        zone: ZoneInfo,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._records = records
        self._zone = zone
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on state; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        # Sum by label set: one manager may have records in two partitions (after
        # a partition count change), and Prometheus must see one series.
        counters: dict[str, dict[tuple[str, ...], float]] = {c: {} for c in MANAGER_COUNTERS}
        gauges: dict[str, dict[tuple[str, ...], float]] = {c: {} for c in PERIOD_GAUGES}
        processor: dict[str, dict[tuple[str, ...], float]] = {c: {} for c in PROCESSOR_COUNTERS}
        now = self._clock()
        current = [(window, period_of(now, window, self._zone).key) for window in WINDOWS]

        for record in self._records():
            if isinstance(record, ManagerState):
                manager = record.manager_id
                for cell, value in record.counters.items():
                    name = cell[0]
                    if name in counters:
                        _add(counters[name], (manager, *cell[1:]), value)
                    elif name in processor:
                        _add(processor[name], cell[1:], value)
                for window, key in current:
                    period = record.periods.get(key)
                    cells = period.cells if period is not None else {}
                    for name, (_, label_sets) in PERIOD_GAUGES.items():
                        for labels in label_sets:
                            value = cells.get((name, *labels), 0.0)
                            _add(gauges[name], (manager, window, *labels), value)
            elif isinstance(record, RejectedState):
                for cell, value in record.counters.items():
                    if cell[0] in processor:
                        _add(processor[cell[0]], cell[1:], value)

        for name, series in counters.items():
            spec = MANAGER_COUNTERS[name]
            yield _family(
                CounterMetricFamily(
                    spec.name, spec.documentation, labels=["manager", *spec.labels]
                ),
                series,
            )
        for name, series in gauges.items():
            spec = PERIOD_GAUGES[name][0]
            yield _family(
                GaugeMetricFamily(
                    spec.name, spec.documentation, labels=["manager", "window", *spec.labels]
                ),
                series,
            )
        for name, series in processor.items():
            spec = PROCESSOR_COUNTERS[name]
            yield _family(
                CounterMetricFamily(spec.name, spec.documentation, labels=list(spec.labels)),
                series,
            )


def _add(series: dict[tuple[str, ...], float], labels: tuple[str, ...], value: float) -> None:
    series[labels] = series.get(labels, 0.0) + value


def _family(
    family: CounterMetricFamily | GaugeMetricFamily, series: dict[tuple[str, ...], float]
) -> Metric:
    for labels, value in sorted(series.items()):
        family.add_metric(list(labels), value)
    return family
