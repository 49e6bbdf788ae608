"""The forecast's arithmetic on examples worked by hand."""

from __future__ import annotations

import math

import pytest

from salespulse.forecast.model import (
    Forecast,
    OpenStage,
    manager_forecast,
    mean_duration,
    ratio,
    remaining_seconds,
    stage_probability,
    team_forecast,
    time_share,
)

DAY = 86400.0


def test_the_team_ratio_serves_a_manager_with_too_few_own_deals() -> None:
    # The team: 20 of 80 deals that reached the stage were won; the manager's own
    # 29 are one short of resting on enough.
    assert stage_probability(20, 80, own_won=20, own_reached=29) == 0.25


def test_the_managers_own_ratio_once_it_rests_on_thirty_deals() -> None:
    assert stage_probability(20, 80, own_won=12, own_reached=30) == 0.4
    assert stage_probability(20, 80, own_won=12, own_reached=40, min_own=50) == 0.25


def test_a_ratio_is_a_probability() -> None:
    assert ratio(0, 0) == 0.0  # nothing reached the stage in the look-back
    assert ratio(9, 6) == 1.0  # wins of older cohorts outnumber the window's entries


def test_remaining_cycle_sums_the_stages_at_and_after_the_deals_own() -> None:
    durations = {"qualified": 2 * DAY, "proposal": 3 * DAY, "negotiation": 5 * DAY}
    stages = ("qualified", "proposal", "negotiation")
    assert remaining_seconds("proposal", stages, durations) == 8 * DAY
    assert remaining_seconds("qualified", stages, durations) == 10 * DAY
    assert mean_duration(30 * DAY, 6) == 5 * DAY
    assert mean_duration(0, 0) == 0.0


def test_the_share_that_can_close_in_the_month() -> None:
    assert time_share(10 * DAY, 5 * DAY) == 1.0  # h >= remaining: all of them
    assert time_share(10 * DAY, 40 * DAY) == 0.25  # h < remaining: a quarter
    assert time_share(10 * DAY, 0.0) == 1.0  # no stage time known


def test_a_managers_forecast_mean_and_range() -> None:
    # Won so far 1,000 (2 deals). Three deals worth 3,000 at p=0.5 and f=1 (q=0.5);
    # four worth 2,000 at p=0.25 and f=0.5 (q=0.125).
    # mean = 1000 + 3000*0.5 + 2000*0.125 = 2750
    # var = 3000²/3 * 0.25 + 2000²/4 * 0.125*0.875 = 750000 + 109375 = 859375
    # deals = 2 + 1.5 + 0.5 = 4, var = 3*0.25 + 4*0.109375 = 1.1875
    forecast = manager_forecast(
        1000.0, 2.0, [OpenStage(3000.0, 3, 0.5, 1.0), OpenStage(2000.0, 4, 0.25, 0.5)]
    )
    assert forecast.value == 2750.0
    assert forecast.value_variance == 859375.0
    assert forecast.deals == 4.0
    assert forecast.deals_variance == 1.1875
    sigma = math.sqrt(859375.0)  # 927.02
    assert forecast.value_p10 == pytest.approx(2750.0 - 1.2816 * sigma)  # 1561.93
    assert forecast.value_p90 == pytest.approx(2750.0 + 1.2816 * sigma)  # 3938.07
    assert round(forecast.value_p10, 2) == 1561.93


def test_p10_never_falls_below_what_is_won_already() -> None:
    # One deal of 1,000 at q=0.5: mean 1,500, sigma 500; 1500 - 640.8 = 859.2 < 1,000 won.
    forecast = manager_forecast(1000.0, 1.0, [OpenStage(1000.0, 1, 0.5, 1.0)])
    assert forecast.value == 1500.0
    assert forecast.value_p10 == 1000.0
    assert forecast.value_p90 == pytest.approx(1500.0 + 1.2816 * 500.0)
    assert forecast.deals_p10 == 1.0  # 1.5 - 1.2816 * 0.5 = 0.86 < 1 won


def test_a_team_sums_means_and_variances_not_ranges() -> None:
    one = Forecast(100.0, 1.0, 400.0, 900.0, 3.0, 0.5)
    two = Forecast(0.0, 0.0, 300.0, 1600.0, 2.0, 0.25)
    team = team_forecast([one, two])
    assert team == Forecast(100.0, 1.0, 700.0, 2500.0, 5.0, 0.75)
    assert team.value_p90 == pytest.approx(700.0 + 1.2816 * 50.0)  # sqrt(900 + 1600) = 50


def test_an_empty_stage_adds_nothing() -> None:
    assert manager_forecast(0.0, 0.0, [OpenStage(0.0, 0, 0.5, 1.0)]).value == 0.0
