"""What the wall shows at one moment, as the JSON its page renders.

Both sources (workers' /metrics, or a Prometheus with the recording rules)
produce the same shape, so the page knows nothing of where numbers come from.
Grades ("ok", "near", "bad") are decided here, against each manager's own
effective KPI target; team and department figures against the team default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from salespulse.kpis import Figures, ManagerRow, grade

LEADERS = 5  # leaderboard length: what a room reads at a glance


def figures(item: Figures, targets: dict[str, float]) -> dict[str, Any]:
    """A team's or the department's figures with their grades."""
    data = asdict(item)
    data["grades"] = {
        "overdue_rate": grade(
            "max_overdue_rate", item.overdue_rate, targets.get("max_overdue_rate")
        ),
        "avg_call_seconds": grade(
            "max_avg_call_duration_seconds",
            item.avg_call_seconds,
            targets.get("max_avg_call_duration_seconds"),
        ),
        "win_rate": grade("min_win_rate", item.win_rate, targets.get("min_win_rate")),
    }
    return data


def manager(row: ManagerRow) -> dict[str, Any]:
    """One manager's figures, each graded against the manager's own target."""
    targets = row.targets
    return {
        "manager": row.manager,
        "name": row.name,
        "team": row.team,
        "active": row.active,
        "closed": row.closed,
        "won": row.won,
        "won_amount": row.won_amount,
        "deviation": row.deviation,
        "overdue_rate": row.overdue_rate,
        "avg_call_seconds": row.avg_call_seconds,
        "win_rate": row.win_rate,
        "attainment": row.attainment,
        "plan": row.plan.get("deals_closed"),
        "month_closed": row.plan_actual.get("deals_closed", 0.0),
        "targets": targets,
        "grades": {
            "deviation": grade(
                "max_throughput_deviation",
                row.deviation,
                targets.get("max_throughput_deviation"),
            ),
            "overdue_rate": grade(
                "max_overdue_rate", row.overdue_rate, targets.get("max_overdue_rate")
            ),
            "avg_call_seconds": grade(
                "max_avg_call_duration_seconds",
                row.avg_call_seconds,
                targets.get("max_avg_call_duration_seconds"),
            ),
            "win_rate": grade("min_win_rate", row.win_rate, targets.get("min_win_rate")),
        },
    }


def leaderboard(rows: Sequence[ManagerRow]) -> list[dict[str, Any]]:
    """The managers furthest along their monthly plan (deals closed), then by won value;
    without plans, by deals closed this month."""
    ranked = sorted(
        (row for row in rows if row.name and (row.active or row.plan)),
        key=lambda row: (
            -(row.attainment if row.attainment is not None else -1.0),
            -row.plan_actual.get("deals_closed", 0.0),
            -row.plan_actual.get("won_amount", 0.0),
            row.name,
        ),
    )
    return [
        {
            "rank": rank,
            "manager": row.manager,
            "name": row.name,
            "team": row.team,
            "attainment": row.attainment,
            "month_closed": row.plan_actual.get("deals_closed", 0.0),
            "plan": row.plan.get("deals_closed"),
            "month_won_amount": row.plan_actual.get("won_amount", 0.0),
        }
        for rank, row in enumerate(ranked[:LEADERS], start=1)
    ]


def snapshot(
    *,
    window: str,
    source: str,
    rows: Sequence[ManagerRow],
    teams: Sequence[Figures],
    department: Figures,
    defaults: dict[str, float],
    alerts: list[dict[str, str]] | None,
) -> dict[str, Any]:
    """The page's whole content; *alerts* None when the source cannot know them."""
    return {
        "window": window,
        "source": source,
        "error": None,
        "department": figures(department, defaults),
        "teams": [figures(team, defaults) for team in teams],
        "managers": [manager(row) for row in sorted(rows, key=lambda r: (r.team, r.name))],
        "leaderboard": leaderboard(rows),
        "alerts": alerts,
    }
