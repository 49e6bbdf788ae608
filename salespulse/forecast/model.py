"""The forecast's arithmetic, on numbers already read: no state, no clock, no I/O.

The live recording rules and the offline backtest compute the same thing, so
it is written once here, with the definitions both follow. At a moment t in
month M, for manager m and each open stage s of a funnel:

- ``h``: the seconds left in M (company time zone) at t;
- ``A_s`` / ``N_s``: the amount / the number of m's open deals now in s (a deal
  without an amount counts 0 in ``A_s``);
- ``p_s`` = P(won | reached s) = Δ reached(won) / Δ reached(s) over the
  look-back (90 days before t, all history when it is shorter), the team's
  ratio, or m's own once m's Δ reached(s) is at least ``min_own`` (30). A
  window's wins can outnumber the deals that reached s in it (they come from
  older cohorts), so the ratio is capped at 1: it is a probability;
- ``d_k``: the team's mean time in stage k over the look-back (stage duration
  sum / count; 0 when no deal left k in it); ``remaining_s`` = Σ d_k over the
  open stages k at or after s in funnel order; ``f_s`` = min(1, h /
  remaining_s), 1 when remaining_s is 0: the share of the deals in s that can
  still close within M, so deals whose typical remaining cycle runs past the
  month's end count toward later months;
- ``q_s`` = p_s f_s, each open deal treated as won in M with that chance.

Then the forecast won value = won so far in M + Σ_s A_s q_s and the expected won
deals = won deals so far + Σ_s N_s q_s. The range: var(value) = Σ_s (A_s² / N_s)
q_s (1 - q_s) (N_s deals of the stage's mean amount, each a Bernoulli trial),
var(deals) = Σ_s N_s q_s (1 - q_s); p10 = max(won so far, mean - 1.2816 √var),
p90 = mean + 1.2816 √var. A team's forecast sums its managers' means, won so
far and variances (the deals are taken as independent).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from salespulse.settings import Forecast as ForecastSettings

Z90 = 1.2816  # the standard normal's 90th percentile: p10/p90 = mean -+ Z90 sd
# The company file's defaults ([forecast]), which the recording rules are written for.
LOOK_BACK_DAYS = ForecastSettings().look_back_days
MIN_OWN_DEALS = ForecastSettings().min_own_deals


def ratio(won: float, reached: float) -> float:
    """Δ reached(won) / Δ reached(s), capped to [0, 1]; 0 when nothing reached s."""
    if reached <= 0:
        return 0.0
    return min(1.0, max(0.0, won / reached))


def stage_probability(
    team_won: float,
    team_reached: float,
    own_won: float,
    own_reached: float,
    min_own: float = MIN_OWN_DEALS,
) -> float:
    """p_s: the manager's own ratio once it rests on *min_own* deals, else the team's."""
    if own_reached >= min_own:
        return ratio(own_won, own_reached)
    return ratio(team_won, team_reached)


def mean_duration(duration_sum: float, duration_count: float) -> float:
    """d_k in seconds: stage duration sum / count; 0 when no deal left the stage."""
    return duration_sum / duration_count if duration_count > 0 else 0.0


def remaining_seconds(stage: str, open_stages: Sequence[str], durations: dict[str, float]) -> float:
    """remaining_s: Σ d_k over the open stages k at or after *stage* (funnel order)."""
    start = open_stages.index(stage)
    return sum(durations.get(k, 0.0) for k in open_stages[start:])


def time_share(seconds_left: float, remaining: float) -> float:
    """f_s = min(1, h / remaining_s); 1 when remaining_s is 0."""
    if remaining <= 0:
        return 1.0
    return min(1.0, max(0.0, seconds_left) / remaining)


@dataclass(frozen=True, slots=True)
class OpenStage:
    """A manager's open deals in one stage, with their chance of being won in the month."""

    amount: float  # A_s
    deals: float  # N_s
    probability: float  # p_s
    share: float  # f_s

    @property
    def chance(self) -> float:
        """q_s = p_s f_s."""
        return self.probability * self.share


@dataclass(frozen=True, slots=True)
class Forecast:
    """Won value and won deals expected by the month's end, with their variances."""

    won_value: float  # won so far in the month
    won_deals: float
    value: float  # mean: won so far + expected from the open deals
    value_variance: float
    deals: float
    deals_variance: float

    @property
    def value_p10(self) -> float:
        return max(self.won_value, self.value - Z90 * math.sqrt(self.value_variance))

    @property
    def value_p90(self) -> float:
        return self.value + Z90 * math.sqrt(self.value_variance)

    @property
    def deals_p10(self) -> float:
        return max(self.won_deals, self.deals - Z90 * math.sqrt(self.deals_variance))

    @property
    def deals_p90(self) -> float:
        return self.deals + Z90 * math.sqrt(self.deals_variance)


def manager_forecast(won_value: float, won_deals: float, stages: Iterable[OpenStage]) -> Forecast:
    """One manager's forecast from what is won so far and the open deals by stage."""
    value, deals = won_value, won_deals
    value_variance = deals_variance = 0.0
    for stage in stages:
        if stage.deals <= 0:
            continue
        q = stage.chance
        spread = q * (1.0 - q)
        value += stage.amount * q
        deals += stage.deals * q
        value_variance += stage.amount * stage.amount / stage.deals * spread
        deals_variance += stage.deals * spread
    return Forecast(won_value, won_deals, value, value_variance, deals, deals_variance)


def team_forecast(forecasts: Iterable[Forecast]) -> Forecast:
    """A team's (or the company's) forecast: the sums of its managers' means and variances."""
    total = Forecast(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for one in forecasts:
        total = Forecast(
            total.won_value + one.won_value,
            total.won_deals + one.won_deals,
            total.value + one.value,
            total.value_variance + one.value_variance,
            total.deals + one.deals,
            total.deals_variance + one.deals_variance,
        )
    return total
