"""The KPI formulas of the wall screens, computed from the workers' /metrics.

``salespulse top`` and ``salespulse wall`` read the workers directly when no
Prometheus is at hand; both compute here, with the operations the recording
rules (deploy/prometheus/rules/salespulse-recording.yml) use, in the same
order, so a wall without Prometheus shows what Grafana shows with it
(tests/unit/salespulse/test_kpis_match_rules.py holds both to one scrape).

A manager's row keeps the counts its ratios come from, so a team or the whole
department is the same formulas over pooled counts (:func:`pool`), as the
team rules pool their managers.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]
Samples = dict[str, dict[Labels, float]]

# Configuration series: every worker exports the same ones, so they are taken once,
# not summed (the rules take max by (...)).
CONFIGURATION = frozenset(
    {
        "salespulse_kpi_target",
        "salespulse_manager_info",
        "salespulse_plan_target",
        "salespulse_funnel_stage_info",
        "salespulse_calendar_elapsed_ratio",
    }
)
# KPIs whose value must stay at or below the target; the others at or above.
MAXIMA = ("max_overdue_rate", "max_avg_call_duration_seconds", "max_throughput_deviation")
NEAR_MAXIMUM = 0.75  # "near" from 75% of the way to a maximum target


@dataclass(frozen=True)
class Step:
    """A funnel step: conversion into *stage* from *previous*."""

    pipeline: str
    previous: str
    stage: str
    conversion: float


@dataclass(frozen=True)
class ManagerRow:
    manager: str
    name: str
    team: str
    closed: float
    won: float
    deviation: float | None  # from the team average of active managers
    overdue_rate: float | None
    avg_call_seconds: float | None
    targets: dict[str, float]
    active: bool = False
    won_amount: float = 0.0
    tasks_due: float = 0.0
    tasks_overdue: float = 0.0
    calls_answered: float = 0.0
    talk_seconds: float = 0.0
    win_rate: float | None = None
    plan: dict[str, float] = field(default_factory=dict)  # effective monthly plan
    plan_actual: dict[str, float] = field(default_factory=dict)  # this month so far
    reached: dict[tuple[str, str], float] = field(default_factory=dict)  # (pipeline, stage)

    @property
    def attainment(self) -> float | None:
        """Share of the monthly deals_closed plan done, where there is a plan."""
        plan = self.plan.get("deals_closed")
        return self.plan_actual.get("deals_closed", 0.0) / plan if plan else None


@dataclass(frozen=True)
class Figures:
    """A team's or the department's numbers, pooled from its managers' counts."""

    name: str
    active: int
    closed: float
    won: float
    won_amount: float
    average: float | None  # deals closed per active manager
    win_rate: float | None
    overdue_rate: float | None
    avg_call_seconds: float | None
    attainment: float | None  # pooled deals_closed plan
    worst_step: Step | None


def parse(texts: Iterable[str]) -> Samples:
    """Samples of every exposition, summed over workers: name -> labels -> value."""
    merged: Samples = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series = merged.setdefault(sample.name, {})
                key = frozenset(sample.labels.items())
                if family.name in CONFIGURATION:
                    series[key] = sample.value
                else:
                    series[key] = series.get(key, 0.0) + sample.value
    return merged


def fetch(urls: Sequence[str], timeout: float = 5.0) -> Samples:
    """Every URL's /metrics, summed over workers (:func:`parse`)."""
    texts = []
    for url in urls:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            texts.append(response.read().decode())
    return parse(texts)


def _by(
    samples: Samples, name: str, keys: tuple[str, ...], **wanted: str
) -> dict[tuple[str, ...], float]:
    found: dict[tuple[str, ...], float] = {}
    for labels, value in samples.get(name, {}).items():
        label_map = dict(labels)
        if all(label_map.get(k) == v for k, v in wanted.items()):
            key = tuple(label_map.get(k, "") for k in keys)
            found[key] = found.get(key, 0.0) + value
    return found


def _by_manager(samples: Samples, name: str, **wanted: str) -> dict[str, float]:
    return {key[0]: value for key, value in _by(samples, name, ("manager",), **wanted).items()}


def _nested(samples: Samples, name: str, key: str) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    for labels, value in samples.get(name, {}).items():
        label_map = dict(labels)
        found.setdefault(label_map["manager"], {})[label_map[key]] = value
    return found


def ratio(part: float | None, whole: float | None) -> float | None:
    """*part* / *whole*, or None without a denominator (the rules' ``> 0`` filter)."""
    return part / whole if part is not None and whole else None


def summarize(samples: Samples, window: str) -> list[ManagerRow]:
    """Each manager's figures in the calendar *window* ("day", "week", "month")."""
    info = {
        dict(labels)["manager"]: dict(labels)
        for labels in samples.get("salespulse_manager_info", {})
    }
    closed = _by_manager(samples, "salespulse_period_deals_closed", window=window)
    won = _by_manager(samples, "salespulse_period_deals_closed", window=window, outcome="won")
    amount = _by_manager(samples, "salespulse_period_won_amount", window=window)
    created = _by_manager(samples, "salespulse_period_deals_created", window=window)
    calls = _by_manager(samples, "salespulse_period_calls", window=window)
    answered = _by_manager(samples, "salespulse_period_calls", window=window, answered="true")
    talk = _by_manager(samples, "salespulse_period_call_duration_seconds", window=window)
    due = _by_manager(samples, "salespulse_period_tasks_deadline_passed", window=window)
    overdue = _by_manager(samples, "salespulse_period_tasks_overdue", window=window)
    month_closed = _by_manager(samples, "salespulse_period_deals_closed", window="month")
    month_amount = _by_manager(samples, "salespulse_period_won_amount", window="month")
    funnel = {
        (labels["pipeline"], labels["stage"])
        for labels in map(dict, samples.get("salespulse_funnel_stage_info", {}))
    }
    reached: dict[str, dict[tuple[str, str], float]] = {}
    stage_keys = ("manager", "pipeline", "stage")
    for (manager, *step), value in _by(
        samples, "salespulse_period_stage_reached", stage_keys, window=window
    ).items():
        if (step[0], step[1]) in funnel:
            reached.setdefault(manager, {})[(step[0], step[1])] = value
    targets = _nested(samples, "salespulse_kpi_target", "kpi")
    plans = _nested(samples, "salespulse_plan_target", "plan")

    managers = sorted(set(info) | set(closed))
    active = {m for m in managers if closed.get(m, 0) + created.get(m, 0) + calls.get(m, 0) > 0}
    team_of = {m: info.get(m, {}).get("team", "") for m in managers}
    averages: dict[str, float] = {}
    for team in set(team_of.values()):
        members = [m for m in active if team_of[m] == team]
        if members:
            averages[team] = sum(closed.get(m, 0.0) for m in members) / len(members)

    rows = []
    for manager in managers:
        average = averages.get(team_of[manager])
        deviation = None
        if manager in active and average:
            deviation = (closed.get(manager, 0.0) - average) / average
        # Only configured managers have a plan of their own; the team default applies
        # to every configured manager (the rules join it with salespulse_manager_info).
        plan = {**plans.get("", {}), **plans.get(manager, {})} if manager in info else {}
        rows.append(
            ManagerRow(
                manager=manager,
                name=info.get(manager, {}).get("name", manager),
                team=team_of[manager],
                closed=closed.get(manager, 0.0),
                won=won.get(manager, 0.0),
                deviation=deviation,
                overdue_rate=ratio(overdue.get(manager, 0.0), due.get(manager)),
                avg_call_seconds=ratio(talk.get(manager, 0.0), answered.get(manager)),
                targets={**targets.get("", {}), **targets.get(manager, {})},
                active=manager in active,
                won_amount=amount.get(manager, 0.0),
                tasks_due=due.get(manager, 0.0),
                tasks_overdue=overdue.get(manager, 0.0),
                calls_answered=answered.get(manager, 0.0),
                talk_seconds=talk.get(manager, 0.0),
                win_rate=ratio(won.get(manager, 0.0), closed.get(manager)),
                plan=plan,
                plan_actual={
                    "deals_closed": month_closed.get(manager, 0.0),
                    "won_amount": month_amount.get(manager, 0.0),
                },
                reached=reached.get(manager, {}),
            )
        )
    return rows


def stage_order(samples: Samples) -> dict[str, list[tuple[str, str]]]:
    """Each pipeline's steps (previous stage, stage), in funnel order."""
    steps: dict[str, list[tuple[int, str, str]]] = {}
    for labels in map(dict, samples.get("salespulse_funnel_stage_info", {})):
        if labels.get("previous_stage"):
            steps.setdefault(labels["pipeline"], []).append(
                (int(labels["index"]), labels["previous_stage"], labels["stage"])
            )
    return {p: [(prev, stage) for _, prev, stage in sorted(s)] for p, s in steps.items()}


def worst_step(
    reached: dict[tuple[str, str], float], steps: dict[str, list[tuple[str, str]]]
) -> Step | None:
    """The step with the lowest conversion, among steps some deal came to."""
    found = []
    for pipeline, pairs in sorted(steps.items()):
        for previous, stage in pairs:
            conversion = ratio(
                reached.get((pipeline, stage), 0.0), reached.get((pipeline, previous))
            )
            if conversion is not None:
                found.append(Step(pipeline, previous, stage, conversion))
    return min(found, key=lambda step: step.conversion, default=None)


def pool(name: str, rows: Sequence[ManagerRow], steps: dict[str, list[tuple[str, str]]]) -> Figures:
    """The figures of *rows* together: sums of counts, then the ratios of the sums."""
    active = [row for row in rows if row.active]
    reached: dict[tuple[str, str], float] = {}
    for row in rows:
        for key, value in row.reached.items():
            reached[key] = reached.get(key, 0.0) + value
    closed = sum(row.closed for row in rows)
    planned = [row for row in rows if row.plan.get("deals_closed")]
    return Figures(
        name=name,
        active=len(active),
        closed=closed,
        won=sum(row.won for row in rows),
        won_amount=sum(row.won_amount for row in rows),
        average=ratio(sum(row.closed for row in active), len(active)),
        win_rate=ratio(sum(row.won for row in rows), closed),
        overdue_rate=ratio(sum(r.tasks_overdue for r in rows), sum(r.tasks_due for r in rows)),
        avg_call_seconds=ratio(
            sum(r.talk_seconds for r in rows), sum(r.calls_answered for r in rows)
        ),
        attainment=ratio(
            sum(r.plan_actual.get("deals_closed", 0.0) for r in planned),
            sum(r.plan["deals_closed"] for r in planned),
        ),
        worst_step=worst_step(reached, steps),
    )


def teams(rows: Sequence[ManagerRow], steps: dict[str, list[tuple[str, str]]]) -> list[Figures]:
    """Each team's figures, by team name."""
    names = sorted({row.team for row in rows})
    return [pool(team, [row for row in rows if row.team == team], steps) for team in names]


def grade(kpi: str, value: float | None, target: float | None) -> str:
    """ "ok", "near" or "bad" for *value* against the manager's own *target*; "" without.

    A maximum is near from 75% of the way to it; a deviation (either way) from half
    of it; a minimum is bad below it and otherwise ok.
    """
    if value is None or target is None:
        return ""
    if kpi == "max_throughput_deviation":
        if abs(value) > target:
            return "bad"
        return "near" if abs(value) > target / 2 else "ok"
    if kpi in MAXIMA:
        if value > target:
            return "bad"
        return "near" if value > target * NEAR_MAXIMUM else "ok"
    return "bad" if value < target else "ok"
