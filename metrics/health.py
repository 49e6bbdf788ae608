"""The worker's own health, for the SRE: readiness, lag, batches, writes, build.

These are process metrics (batches and changelog writes count from process
start). They never read the state: what follows the state, the newest event
time per source partition included, is rendered by metrics.exposition in its
one walk of the state per scrape.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from salespulse import __version__


class WorkerView(Protocol):
    batches: int
    started_at: float
    ready_at: float | None
    lag: dict[tuple[str, int], int]

    def ready(self) -> bool: ...

    def active_partitions(self) -> set[int]: ...

    def changelog_records_written(self) -> int: ...

    def messages_read_back(self) -> dict[str, int]: ...


def _faust_version() -> str:
    try:
        from importlib.metadata import version

        return version("faust-streaming")
    except Exception:  # metadata missing in an unusual install
        return ""


class HealthCollector(Collector):
    def __init__(self, worker: WorkerView):
        self._worker = worker
        self._faust = _faust_version()

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        worker = self._worker
        info = GaugeMetricFamily(
            "salespulse_build_info",
            "Version of salespulse and what it runs on; value 1.",
            labels=["version", "python", "faust"],
        )
        info.add_metric([__version__, platform.python_version(), self._faust], 1.0)
        yield info

        ready = worker.ready()
        yield GaugeMetricFamily(
            "salespulse_worker_ready",
            "1 when state is recovered and the worker is consuming, else 0.",
            value=1.0 if ready else 0.0,
        )
        yield GaugeMetricFamily(
            "salespulse_worker_start_time_seconds",
            "When this worker process started (Unix time).",
            value=worker.started_at,
        )
        if worker.ready_at is not None:
            yield GaugeMetricFamily(
                "salespulse_worker_recovery_seconds",
                "Seconds from process start to first ready: state restore and group join.",
                value=worker.ready_at - worker.started_at,
            )
        partitions = worker.active_partitions()
        yield GaugeMetricFamily(
            "salespulse_assigned_partitions",
            "Partitions this worker actively owns (standby copies not counted).",
            value=float(len(partitions)),
        )

        lag = GaugeMetricFamily(
            "salespulse_consumer_lag_messages",
            "Messages of an owned partition not yet consumed.",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(worker.lag.items()):
            lag.add_metric([topic, str(partition)], float(behind))
        yield lag

        yield CounterMetricFamily(
            "salespulse_batches",
            "Batches of events processed by this process.",
            value=float(worker.batches),
        )
        yield CounterMetricFamily(
            "salespulse_changelog_records",
            "State records written to the changelog by this process.",
            value=float(worker.changelog_records_written()),
        )
        read_back = CounterMetricFamily(
            "salespulse_messages_read_back",
            "Source messages the consumer went past without handing them over, read back "
            "from the broker by this process and applied in order.",
            labels=["topic"],
        )
        for topic, count in sorted(worker.messages_read_back().items()):
            read_back.add_metric([topic], float(count))
        yield read_back
