"""The company configuration as metrics, so PromQL can join targets, names and teams.

Every configured manager gets its effective KPI targets (its own where set,
the team default elsewhere) besides the team default itself (manager ""),
so a rule can compare a manager against its target with a plain join.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date

from prometheus_client.core import GaugeMetricFamily, Metric

from salespulse.settings import KpiTargets, Settings


def _targets(kpi: KpiTargets) -> Iterator[tuple[str, float]]:
    for name, value in kpi.model_dump().items():
        if value is not None:
            yield name, float(value)


def config_families(
    settings: Settings, seen_managers: Iterable[str], today: date
) -> Iterator[Metric]:
    kpi = GaugeMetricFamily(
        "salespulse_kpi_target",
        'KPI targets; manager="" is the team default, others are effective per manager.',
        labels=["kpi", "manager"],
    )
    for name, value in _targets(settings.kpi):
        kpi.add_metric([name, ""], value)
    for manager_id, manager in sorted(settings.managers.items()):
        for name, value in _targets(manager.kpi_on(today, settings.kpi)):
            kpi.add_metric([name, manager_id], value)
    yield kpi

    info = GaugeMetricFamily(
        "salespulse_manager_info",
        "Managers known from the configuration or from events: name and team.",
        labels=["manager", "name", "team"],
    )
    configured = settings.managers
    for manager_id in sorted(set(configured) | set(seen_managers)):
        known = configured.get(manager_id)
        if known is None:
            info.add_metric([manager_id, manager_id, ""], 1.0)
        else:
            info.add_metric([manager_id, known.name, known.team], 1.0)
    yield info

    stages = GaugeMetricFamily(
        "salespulse_funnel_stage_info",
        "The ordered stages of each funnel, for stage-to-stage conversion in PromQL.",
        labels=["pipeline", "stage", "index", "previous_stage"],
    )
    for pipeline_name, pipeline in sorted(settings.pipelines.items()):
        previous = ""
        for index, stage in enumerate(pipeline.stages):
            stages.add_metric([pipeline_name, stage, str(index), previous], 1.0)
            previous = stage
    yield stages
