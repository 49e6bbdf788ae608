"""What a director would call a believable sales floor, checked on scraped metrics.

The demo floor is meant to look like a real B2B department: wins and won
value on the board, win rates and conversions a sales director has seen
before, overdue rates around the KPI with the seed's delinquent manager far
above it, calls of a few to a few dozen minutes with the seed's long caller
near 32 minutes, and a week's volume a manager can actually handle. The
figures are read either for a calendar window (the ``salespulse_period_*``
gauges) or over the whole history (the ``*_total`` counters).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from tests.support.scrape import Samples

DELINQUENT, LONG_CALLER = "m-01", "m-02"


@dataclass
class Figures:
    """One manager's numbers over one span of time."""

    won: float = 0.0
    lost: float = 0.0
    won_amount: float = 0.0
    reached_first: float = 0.0
    reached_won: float = 0.0
    deadline_passed: float = 0.0
    overdue: float = 0.0
    answered: float = 0.0
    talk_seconds: float = 0.0

    @property
    def closed(self) -> float:
        return self.won + self.lost

    def add(self, other: Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Floor:
    managers: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))

    @property
    def team(self) -> Figures:
        total = Figures()
        for figures in self.managers.values():
            total.add(figures)
        return total


# field -> (metric for a window, metric over the history, extra labels)
_SOURCES: dict[str, tuple[str, str, dict[str, str]]] = {
    "won": ("salespulse_period_deals_closed", "salespulse_deals_closed_total", {"outcome": "won"}),
    "lost": (
        "salespulse_period_deals_closed",
        "salespulse_deals_closed_total",
        {"outcome": "lost"},
    ),
    "won_amount": ("salespulse_period_won_amount", "salespulse_deals_won_amount_total", {}),
    "reached_first": (
        "salespulse_period_stage_reached",
        "salespulse_funnel_stage_reached_total",
        {"stage": "lead"},
    ),
    "reached_won": (
        "salespulse_period_stage_reached",
        "salespulse_funnel_stage_reached_total",
        {"stage": "won"},
    ),
    "deadline_passed": (
        "salespulse_period_tasks_deadline_passed",
        "salespulse_tasks_deadline_passed_total",
        {},
    ),
    "overdue": ("salespulse_period_tasks_overdue", "salespulse_tasks_overdue_total", {}),
    "answered": ("salespulse_period_calls", "salespulse_calls_total", {"answered": "true"}),
    "talk_seconds": (
        "salespulse_period_call_duration_seconds",
        "salespulse_call_duration_seconds_total",
        {},
    ),
}


def read(samples: Samples, window: str | None) -> Floor:
    """Every manager's figures for *window* (``day``/``week``/``month``), or over the
    whole history when *window* is None."""
    floor = Floor()
    for name, (period_metric, total_metric, extra) in _SOURCES.items():
        metric = total_metric if window is None else period_metric
        wanted = dict(extra, **({} if window is None else {"window": window}))
        for (sample, series), value in samples.items():
            labels = dict(series)
            if sample != metric or "manager" not in labels:
                continue
            if all(labels.get(key) == want for key, want in wanted.items()):
                figures = floor.managers[labels["manager"]]
                setattr(figures, name, getattr(figures, name) + value)
    return floor


def _within(what: str, value: float, low: float, high: float) -> list[str]:
    return [] if low <= value <= high else [f"{what} = {value:.3g}, not within {low}..{high}"]


def problems(floor: Floor, *, weeks: float, every_manager_wins: bool) -> list[str]:
    """What is implausible about *floor*, a span of about *weeks* weeks of work."""
    found: list[str] = []
    team = floor.team
    if team.won <= 0 or team.won_amount <= 0:
        found.append(f"team won {team.won:g} deals worth {team.won_amount:g}")
    found += _within("team win rate", team.won / max(team.closed, 1), 0.1, 0.6)
    found += _within(
        "team conversion lead -> won", team.reached_won / max(team.reached_first, 1), 0.02, 0.5
    )
    found += _within("team overdue rate", team.overdue / max(team.deadline_passed, 1), 0.05, 0.6)
    found += _within(
        "team average call (min)", team.talk_seconds / max(team.answered, 1) / 60, 3, 40
    )
    for manager, figures in sorted(floor.managers.items()):
        if every_manager_wins and figures.won <= 0:
            found.append(f"{manager} won nothing")
        found += _within(f"{manager} closed deals a week", figures.closed / weeks, 0, 30)
        if figures.answered >= 20:
            minutes = figures.talk_seconds / figures.answered / 60
            low, high = (25.0, 40.0) if manager == LONG_CALLER else (3.0, 22.0)
            found += _within(f"{manager} average call (min)", minutes, low, high)
        if figures.deadline_passed >= 40:
            rate = figures.overdue / figures.deadline_passed
            low, high = (0.3, 0.65) if manager == DELINQUENT else (0.0, 0.4)
            found += _within(f"{manager} overdue rate", rate, low, high)
            if manager == DELINQUENT and rate <= team.overdue / max(team.deadline_passed, 1):
                found.append(f"{manager} overdue rate {rate:.2f} not above the team's")
    return found
