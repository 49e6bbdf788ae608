"""The backtest: at the start of each month, forecast it from what was known then.

Per month M of the replayed history, at t = M's first instant (company time
zone): the forecast of each manager from the counters at t and at t - the
look-back (model.py has the definitions), summed per team and for the whole
company; the actual from the counters at M's end; and two naive baselines a
director would otherwise use, last month's actual and the mean of the three
months before. A baseline needs history, which begins with the first month in
which anything was won (an export's first months may hold deals but no
closes yet); a month without both baselines, or without an actual to divide
by, is left out of every mean absolute percentage error alike.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from salespulse.forecast.model import (
    LOOK_BACK_DAYS,
    MIN_OWN_DEALS,
    Forecast,
    OpenStage,
    manager_forecast,
    mean_duration,
    remaining_seconds,
    stage_probability,
    team_forecast,
    time_share,
)
from salespulse.forecast.replay import (
    CLOSED,
    DURATION_COUNT,
    DURATION_SUM,
    REACHED,
    WON_AMOUNT,
    Snapshot,
)
from salespulse.settings import Settings

COMPANY = "company"


def month_start(day: date, settings: Settings) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=settings.zone)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def months_between(first: datetime, last: datetime, settings: Settings) -> list[date]:
    """The first days of the months (company time zone) from *first*'s to *last*'s."""
    day = first.astimezone(settings.zone).date().replace(day=1)
    end = last.astimezone(settings.zone).date().replace(day=1)
    months = []
    while day <= end:
        months.append(day)
        day = next_month(day)
    return months


def moments_for(
    months: Sequence[date], settings: Settings, look_back_days: float
) -> list[datetime]:
    """Every moment the backtest reads: each month's start and end, and each start's
    look-back."""
    found: set[datetime] = set()
    for month in months:
        start = month_start(month, settings)
        found.update((start, month_start(next_month(month), settings)))
        found.add(start - timedelta(days=look_back_days))
    return sorted(found)


def team_of(settings: Settings, manager: str) -> str:
    configured = settings.managers.get(manager)
    return configured.team if configured is not None and configured.team else "(no team)"


def _delta(now: Snapshot, then: Snapshot | None, key: tuple[str, str, str, str]) -> float:
    return now.counters.get(key, 0.0) - (then.counters.get(key, 0.0) if then else 0.0)


def forecasts_at(
    settings: Settings,
    now: Snapshot,
    before: Snapshot | None,
    month_began: Snapshot,
    month_end: datetime,
    *,
    min_own: float = MIN_OWN_DEALS,
) -> dict[str, Forecast]:
    """Each manager's forecast for the month ending at *month_end*, at *now*.

    *before* is the snapshot a look-back before *now* (None: all history, the
    replay began later), *month_began* the one at the month's first instant
    (won so far = now - month_began)."""
    managers = sorted(now.managers() | set(settings.managers))
    teams: dict[str, list[str]] = defaultdict(list)
    for manager in managers:
        teams[team_of(settings, manager)].append(manager)
    seconds_left = max(0.0, (month_end - now.at).total_seconds())
    forecasts: dict[str, Forecast] = {}
    for manager in managers:
        mates = teams[team_of(settings, manager)]
        stages: list[OpenStage] = []
        for name, pipeline in settings.pipelines.items():
            open_stages = [s for s in pipeline.stages if pipeline.outcome_of(s) is None]
            won_stages = [s for s in pipeline.won if s in pipeline.stages]
            window = _Window(now, before, name)
            durations = {
                stage: mean_duration(
                    window.total(DURATION_SUM, mates, stage),
                    window.total(DURATION_COUNT, mates, stage),
                )
                for stage in open_stages
            }
            for stage in open_stages:
                deals = now.open_deals.get((manager, name, stage))
                if deals is None or deals.deals == 0:
                    continue
                probability = stage_probability(
                    window.reached(mates, won_stages),
                    window.reached(mates, [stage]),
                    window.reached([manager], won_stages),
                    window.reached([manager], [stage]),
                    min_own,
                )
                share = time_share(seconds_left, remaining_seconds(stage, open_stages, durations))
                stages.append(OpenStage(deals.amount, deals.deals, probability, share))
        won_value, won_deals = won_between(month_began, now, manager)
        forecasts[manager] = manager_forecast(won_value, won_deals, stages)
    return forecasts


@dataclass(frozen=True)
class _Window:
    """The look-back of one pipeline: counter increases between two snapshots."""

    now: Snapshot
    before: Snapshot | None
    pipeline: str

    def total(self, name: str, managers: Iterable[str], stage: str) -> float:
        return sum(_delta(self.now, self.before, (name, m, self.pipeline, stage)) for m in managers)

    def reached(self, managers: Sequence[str], stages: Sequence[str]) -> float:
        return sum(self.total(REACHED, managers, stage) for stage in stages)


def won_between(start: Snapshot, end: Snapshot, manager: str) -> tuple[float, float]:
    """(won value, won deals) of *manager* between two snapshots, every pipeline."""
    value = deals = 0.0
    for key, amount in end.counters.items():
        name, who, _, detail = key
        if who != manager:
            continue
        if name == WON_AMOUNT:
            value += amount - start.counters.get(key, 0.0)
        elif name == CLOSED and detail == "won":
            deals += amount - start.counters.get(key, 0.0)
    return value, deals


@dataclass
class MonthRow:
    """One month of one scope (the company or a team)."""

    month: date
    forecast: Forecast
    actual_value: float
    actual_deals: float
    last_value: float | None = None  # baselines; None: no history for them
    trailing_value: float | None = None
    last_deals: float | None = None
    trailing_deals: float | None = None

    @property
    def scored(self) -> bool:
        return self.trailing_value is not None and self.actual_value > 0


@dataclass
class Errors:
    """Mean absolute percentage errors over the scored months (None: no month scored)."""

    months: int = 0
    value: dict[str, float | None] = field(default_factory=dict)
    deals: dict[str, float | None] = field(default_factory=dict)


def mape(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Mean |forecast - actual| / actual, in percent, over (forecast, actual) pairs."""
    if not pairs:
        return None
    return 100.0 * sum(abs(f - a) / a for f, a in pairs) / len(pairs)


def errors(rows: Sequence[MonthRow]) -> Errors:
    scored = [row for row in rows if row.scored]
    result = Errors(months=len(scored))
    for name, value, deals in (
        ("forecast", _forecast_value, _forecast_deals),
        ("last month", _last_value, _last_deals),
        ("3-month mean", _trailing_value, _trailing_deals),
    ):
        result.value[name] = mape([(value(r), r.actual_value) for r in scored])
        counted = [r for r in scored if r.actual_deals > 0]
        result.deals[name] = mape([(deals(r), r.actual_deals) for r in counted])
    return result


def _forecast_value(row: MonthRow) -> float:
    return row.forecast.value


def _forecast_deals(row: MonthRow) -> float:
    return row.forecast.deals


def _last_value(row: MonthRow) -> float:
    return row.last_value or 0.0


def _last_deals(row: MonthRow) -> float:
    return row.last_deals or 0.0


def _trailing_value(row: MonthRow) -> float:
    return row.trailing_value or 0.0


def _trailing_deals(row: MonthRow) -> float:
    return row.trailing_deals or 0.0


@dataclass
class Backtest:
    """Rows per scope ("company", then each team), in month order."""

    scopes: dict[str, list[MonthRow]]
    history_from: date | None  # the first month in which anything was won


def run_backtest(
    settings: Settings,
    snapshots: dict[datetime, Snapshot],
    months: Sequence[date],
    *,
    look_back_days: float = LOOK_BACK_DAYS,
    min_own: float = MIN_OWN_DEALS,
) -> Backtest:
    """Forecast, actual and baselines for every month and scope, from the replay's
    snapshots (taken at ``moments_for(months, ...)``)."""
    per_scope: dict[str, list[MonthRow]] = defaultdict(list)
    history_from: date | None = None
    for month in months:
        start = month_start(month, settings)
        end = month_start(next_month(month), settings)
        now, after = snapshots[start], snapshots[end]
        # Before the first event, the snapshot is empty: the look-back is all history.
        before = snapshots.get(start - timedelta(days=look_back_days))
        managers = forecasts_at(settings, now, before, now, end, min_own=min_own)
        actual = {m: won_between(now, after, m) for m in after.managers() | set(managers)}
        groups: dict[str, list[str]] = defaultdict(list)
        for manager in sorted(set(managers) | set(actual)):
            groups[COMPANY].append(manager)
            groups[team_of(settings, manager)].append(manager)
        for scope, members in groups.items():
            empty = Forecast(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
            per_scope[scope].append(
                MonthRow(
                    month,
                    team_forecast(managers.get(m, empty) for m in members),
                    sum(actual.get(m, (0.0, 0.0))[0] for m in members),
                    sum(actual.get(m, (0.0, 0.0))[1] for m in members),
                )
            )
        if history_from is None and per_scope[COMPANY][-1].actual_deals > 0:
            history_from = month
    for rows in per_scope.values():
        _baselines(rows, history_from)
    ordered = {COMPANY: per_scope.pop(COMPANY, [])}
    ordered.update(sorted(per_scope.items()))
    return Backtest(ordered, history_from)


def _baselines(rows: list[MonthRow], history_from: date | None) -> None:
    """Last month's and the trailing three months' actuals, where history has them."""
    if history_from is None:
        return
    for number, row in enumerate(rows):
        past = [r for r in rows[:number] if r.month >= history_from]
        if past:
            row.last_value, row.last_deals = past[-1].actual_value, past[-1].actual_deals
        if len(past) >= 3:
            row.trailing_value = sum(r.actual_value for r in past[-3:]) / 3
            row.trailing_deals = sum(r.actual_deals for r in past[-3:]) / 3
