"""Where the wall's numbers come from: the workers' /metrics, or a Prometheus.

Without a Prometheus the wall reads every worker's /metrics and computes with
salespulse.kpis, as ``salespulse top`` does. With one, it asks the recording
rules the Grafana dashboards read (instant queries of the HTTP API), so the
wall and Grafana cannot disagree, and it shows the firing alerts too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import aiohttp

from salespulse import kpis
from salespulse.kpis import Figures, ManagerRow, Step
from salespulse.wall.snapshot import snapshot

DEPARTMENT = "Department"


class Source(Protocol):
    async def read(self, window: str) -> dict[str, Any]:
        """The wall's snapshot for the calendar *window*."""
        ...


class WorkersSource:
    """The workers' /metrics, summed over workers, through salespulse.kpis."""

    def __init__(self, urls: Sequence[str], timeout: float = 5.0) -> None:
        self.urls = list(urls)
        self.timeout = timeout

    async def read(self, window: str) -> dict[str, Any]:
        samples = await asyncio.to_thread(kpis.fetch, self.urls, self.timeout)
        rows = kpis.summarize(samples, window)
        steps = kpis.stage_order(samples)
        defaults = {
            dict(labels)["kpi"]: value
            for labels, value in samples.get("salespulse_kpi_target", {}).items()
            if dict(labels).get("manager") == ""
        }
        return snapshot(
            window=window,
            source="workers",
            rows=rows,
            teams=kpis.teams(rows, steps),
            department=kpis.pool(DEPARTMENT, rows, steps),
            defaults=defaults,
            alerts=None,
        )


Vector = list[tuple[dict[str, str], float]]


class PrometheusSource:
    """The recording rules of deploy/prometheus/rules, read with instant queries."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def _query(self, session: aiohttp.ClientSession, expr: str) -> Vector:
        async with session.get(f"{self.url}/api/v1/query", params={"query": expr}) as response:
            body = await response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus refused {expr!r}: {body.get('error')}")
        return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]

    async def read(self, window: str) -> dict[str, Any]:
        w = f'window="{window}"'
        queries = {
            "closed": f"manager_window:salespulse_throughput:deals{{{w}}}",
            "won": f"manager_window:salespulse_deals_won:sum{{{w}}}",
            "active": f"manager_window:salespulse_active:bool{{{w}}}",
            "deviation": f"manager_window:salespulse_throughput_deviation:ratio{{{w}}}",
            "overdue_rate": f"manager_window:salespulse_overdue_rate:ratio{{{w}}}",
            "avg_call": f"manager_window:salespulse_call_duration_seconds:avg{{{w}}}",
            "win_rate": f"manager_window:salespulse_win_rate:ratio{{{w}}}",
            "due": f"manager_window:salespulse_tasks_deadline_passed:sum{{{w}}}",
            "overdue": f"manager_window:salespulse_tasks_overdue:sum{{{w}}}",
            "answered": f"manager_window:salespulse_calls_answered:sum{{{w}}}",
            "talk": f"manager_window:salespulse_call_duration_seconds:sum{{{w}}}",
            "won_amount": f"sum by (manager) (salespulse_period_won_amount{{{w}}})",
            "reached": f"manager_window_pipeline_stage:salespulse_stage_reached:sum{{{w}}}",
            "targets": "manager_kpi:salespulse_kpi_target:effective",
            "defaults": 'max by (kpi) (salespulse_kpi_target{manager=""})',
            "plan": "manager_plan:salespulse_plan_target:effective",
            "plan_actual": "manager_plan:salespulse_plan_actual:sum",
            "info": "max by (manager, team, name) (salespulse_manager_info)",
            "stages": "max by (pipeline, stage, previous_stage, index) "
            "(salespulse_funnel_stage_info)",
            "team_average": f"team_window:salespulse_throughput:avg{{{w}}}",
            "team_active": f"team_window:salespulse_active_managers:count{{{w}}}",
            "team_overdue_rate": f"team_window:salespulse_overdue_rate:ratio{{{w}}}",
            "team_avg_call": f"team_window:salespulse_call_duration_seconds:avg{{{w}}}",
            "team_win_rate": f"team_window:salespulse_win_rate:ratio{{{w}}}",
            "team_attainment": 'team_plan:salespulse_plan_attainment:ratio{plan="deals_closed"}',
            "team_steps": f"team_window_pipeline_stage:salespulse_stage_conversion:ratio{{{w}}}",
            "department_attainment": 'plan:salespulse_plan_attainment:ratio{plan="deals_closed"}',
            "alerts": 'ALERTS{alertstate="firing"}',
        }
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            results = await asyncio.gather(*(self._query(session, q) for q in queries.values()))
        got = dict(zip(queries, results, strict=True))
        rows = _rows(got)
        steps = kpis.stage_order(
            {"salespulse_funnel_stage_info": {frozenset(m.items()): v for m, v in got["stages"]}}
        )
        department = kpis.pool(DEPARTMENT, rows, steps)
        attainment = _one(got["department_attainment"])
        return snapshot(
            window=window,
            source="prometheus",
            rows=rows,
            teams=_teams(got, rows),
            department=replace(department, attainment=attainment),
            defaults={m["kpi"]: v for m, v in got["defaults"]},
            alerts=[
                {
                    "alertname": m.get("alertname", ""),
                    "severity": m.get("severity", ""),
                    "team": m.get("team", ""),
                    "manager": m.get("manager", ""),
                    "name": m.get("name", ""),
                }
                for m, _ in sorted(got["alerts"], key=lambda item: sorted(item[0].items()))
            ],
        )


def _one(vector: Vector) -> float | None:
    return vector[0][1] if vector else None


def _per(vector: Vector, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(m.get(k, "") for k in keys): v for m, v in vector}


def _by_manager(vector: Vector) -> dict[str, float]:
    return {m.get("manager", ""): v for m, v in vector}


def _rows(got: dict[str, Vector]) -> list[ManagerRow]:
    """Each manager's row from the manager-level rules."""
    info = {m["manager"]: m for m, _ in got["info"]}
    closed = _by_manager(got["closed"])
    series = {
        key: _by_manager(got[key])
        for key in (
            "won",
            "active",
            "deviation",
            "overdue_rate",
            "avg_call",
            "win_rate",
            "due",
            "overdue",
            "answered",
            "talk",
            "won_amount",
        )
    }
    targets = _per(got["targets"], "manager", "kpi")
    plans = _per(got["plan"], "manager", "plan")
    actual = _per(got["plan_actual"], "manager", "plan")
    reached = _per(got["reached"], "manager", "pipeline", "stage")
    rows = []
    for manager in sorted(set(info) | set(closed)):
        labels = info.get(manager, {})
        rows.append(
            ManagerRow(
                manager=manager,
                name=labels.get("name") or manager,
                team=labels.get("team", ""),
                closed=closed.get(manager, 0.0),
                won=series["won"].get(manager, 0.0),
                deviation=series["deviation"].get(manager),
                overdue_rate=series["overdue_rate"].get(manager),
                avg_call_seconds=series["avg_call"].get(manager),
                targets={k: v for (m, k), v in targets.items() if m == manager},
                active=manager in series["active"],
                won_amount=series["won_amount"].get(manager, 0.0),
                tasks_due=series["due"].get(manager, 0.0),
                tasks_overdue=series["overdue"].get(manager, 0.0),
                calls_answered=series["answered"].get(manager, 0.0),
                talk_seconds=series["talk"].get(manager, 0.0),
                win_rate=series["win_rate"].get(manager),
                plan={p: v for (m, p), v in plans.items() if m == manager},
                plan_actual={p: v for (m, p), v in actual.items() if m == manager},
                reached={(p, s): v for (m, p, s), v in reached.items() if m == manager},
            )
        )
    return rows


def _teams(got: dict[str, Vector], rows: Sequence[ManagerRow]) -> list[Figures]:
    """Each team's figures from the team-level rules."""
    steps: dict[str, list[Step]] = {}
    for m, value in got["team_steps"]:
        step = Step(m.get("pipeline", ""), m.get("previous_stage", ""), m.get("stage", ""), value)
        steps.setdefault(m.get("team", ""), []).append(step)
    per_team = {key: _per(got[key], "team") for key in got if key.startswith("team_")}
    figures = []
    for team in sorted({row.team for row in rows}):
        members = [row for row in rows if row.team == team]

        def of(key: str, team: str = team) -> float | None:
            return per_team[key].get((team,))

        figures.append(
            Figures(
                name=team,
                active=int(of("team_active") or 0),
                closed=sum(row.closed for row in members),
                won=sum(row.won for row in members),
                won_amount=sum(row.won_amount for row in members),
                average=of("team_average"),
                win_rate=of("team_win_rate"),
                overdue_rate=of("team_overdue_rate"),
                avg_call_seconds=of("team_avg_call"),
                attainment=of("team_attainment"),
                worst_step=min(steps.get(team, []), key=lambda s: s.conversion, default=None),
            )
        )
    return figures
