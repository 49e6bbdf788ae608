"""The forecast's recording rules are written for the `[forecast]` defaults.

A PromQL offset is a literal, so the look-back and the minimum of a manager's
own deals cannot be read from the configuration at evaluation time; this keeps
the rule text and the settings' defaults (which the offline backtest uses) equal.
"""

from __future__ import annotations

import re

from salespulse.settings import Forecast
from tests.support.promql import all_rules


def forecast_exprs() -> str:
    return "\n".join(rule.expr for rule in all_rules() if rule.group == "salespulse_forecast")


def test_the_look_back_is_the_settings_default() -> None:
    offsets = set(re.findall(r"offset (\d+)d", forecast_exprs()))
    assert offsets == {str(Forecast().look_back_days)}


def test_a_managers_own_ratio_needs_the_settings_minimum() -> None:
    minimums = set(re.findall(r">= (\d+)", forecast_exprs()))
    assert minimums == {str(Forecast().min_own_deals)}
