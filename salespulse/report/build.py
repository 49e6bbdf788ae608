"""What the report holds: each intervention and KPI change, its weeks, its numbers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from salespulse.report.figures import (
    FIGURES,
    difference,
    figures,
    format_change,
    format_value,
    percent_change,
)
from salespulse.report.periods import Comparison, weeks_around
from salespulse.report.prometheus import Prometheus, Subject
from salespulse.settings import Settings

Numbers = dict[str, float | None]


@dataclass(frozen=True, slots=True)
class Change:
    """Something that happened on a date to a manager or a team."""

    day: date
    subject: Subject
    title: str  # "call coaching", "KPI max_avg_call_duration_seconds → 1320"


@dataclass(frozen=True, slots=True)
class Result:
    change: Change
    comparison: Comparison
    before: Numbers
    after: Numbers
    weekly: tuple[Numbers, ...]  # every week of both sides, in order
    weekly_starts: tuple[str, ...]  # each week's Monday, ISO

    def percent(self, key: str) -> float | None:
        return percent_change(self.before[key], self.after[key])


def changes(settings: Settings) -> list[Change]:
    """The company file's interventions and KPI changes, by date."""
    found = [
        Change(
            item.date,
            Subject(manager=item.manager, team=item.team),
            item.note or "intervention",
        )
        for item in settings.interventions
    ]
    for manager_id, manager in settings.managers.items():
        for change in manager.kpi_changes:
            targets = change.model_dump(exclude_none=True, exclude={"since"})
            title = "KPI " + ", ".join(f"{kpi} → {value:g}" for kpi, value in targets.items())
            found.append(Change(change.since, Subject(manager=manager_id), title))
    return sorted(found, key=lambda c: (c.day, c.subject.label(), c.title))


def measure(prometheus: Prometheus, change: Change, weeks: int, settings: Settings) -> Result:
    comparison = weeks_around(change.day, weeks, settings.zone)
    totals = {at: prometheus.totals(change.subject, at) for at in comparison.instants}
    before = figures(difference(totals[comparison.before[-1]], totals[comparison.before[0]]))
    after = figures(difference(totals[comparison.after[-1]], totals[comparison.after[0]]))
    weekly: list[Numbers] = []
    starts: list[str] = []
    for side in (comparison.before, comparison.after):
        for start, end in itertools.pairwise(side):
            weekly.append(figures(difference(totals[end], totals[start])))
            starts.append(start.date().isoformat())
    return Result(change, comparison, before, after, tuple(weekly), tuple(starts))


def table(results: list[Result]) -> str:
    """The report as plain text, one block per change."""
    lines: list[str] = []
    for result in results:
        change, comparison = result.change, result.comparison
        lines.append(
            f"{change.day.isoformat()}  {change.subject.label()}: {change.title}"
            f"  ({comparison.weeks} weeks from {comparison.before[0].date()} "
            f"vs {comparison.weeks} weeks from {comparison.after[0].date()})"
        )
        lines.append(f"  {'':28}{'before':>14}{'after':>14}{'change':>10}")
        for figure in FIGURES:
            lines.append(
                f"  {figure.title:28}"
                f"{format_value(result.before[figure.key], figure.unit):>14}"
                f"{format_value(result.after[figure.key], figure.unit):>14}"
                f"{format_change(result.percent(figure.key)):>10}"
            )
        lines.append("")
    return "\n".join(lines) if lines else "no interventions or KPI changes in the company file\n"
