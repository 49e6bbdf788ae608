"""The company file's dated changes as series, for dashboard annotations.

Grafana draws annotations from a data source, and Prometheus is the only one
the dashboards have; so each intervention and each KPI change is exported as
a gauge whose value is the moment it took effect (midnight of its date in the
company's time zone, seconds since the epoch). Their number follows the
company file, not time or traffic: one series per intervention, one per KPI
of each change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from salespulse.settings import Settings

INTERVENTIONS = "salespulse_intervention_timestamp_seconds"
KPI_CHANGES = "salespulse_kpi_change_timestamp_seconds"

FAMILIES = {
    INTERVENTIONS: "An intervention from the company file: when it began.",
    KPI_CHANGES: "A KPI change from the company file: when it took effect.",
}


@dataclass(frozen=True, slots=True, order=True)
class Marker:
    family: str
    labels: tuple[tuple[str, str], ...]  # sorted by name
    at: float


def midnight(day: date, zone: ZoneInfo) -> float:
    """When *day* begins in *zone*, in seconds since the epoch."""
    return datetime.combine(day, time(), tzinfo=zone).timestamp()


def markers(settings: Settings) -> list[Marker]:
    """Every intervention and KPI change, each series once, in exposition order."""
    return sorted(set(_interventions(settings)) | set(_kpi_changes(settings)))


def _interventions(settings: Settings) -> Iterator[Marker]:
    for intervention in settings.interventions:
        manager = intervention.manager or ""
        team = intervention.team
        if team is None:  # a manager's intervention shows on their team's wall too
            configured = settings.managers.get(manager)
            team = configured.team if configured is not None else ""
        labels = (
            ("date", intervention.date.isoformat()),
            ("manager", manager),
            ("note", intervention.note),
            ("team", team),
        )
        yield Marker(INTERVENTIONS, labels, midnight(intervention.date, settings.zone))


def _kpi_changes(settings: Settings) -> Iterator[Marker]:
    for manager_id, manager in settings.managers.items():
        for change in manager.kpi_changes:
            at = midnight(change.since, settings.zone)
            for kpi, target in change.model_dump(exclude_none=True, exclude={"since"}).items():
                labels = (
                    ("kpi", kpi),
                    ("manager", manager_id),
                    ("since", change.since.isoformat()),
                    ("target", f"{float(target):g}"),
                )
                yield Marker(KPI_CHANGES, labels, at)
