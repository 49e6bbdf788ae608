"""The backtest on a small history whose forecast is worked by hand.

Two teams. North's Ann engages two deals on 1 and 2 December (noon, New York),
wins the first on 20 January (1,000) and loses the second on 21 January: 50
days in "engaging" each. She engages two more in January: one won on 10
February (2,000), one still open at the end. South's Bo wins a deal on 15
January (300) after 5 days.

On 1 February (00:00 New York), all history is shorter than the 90-day
look-back. North: 4 deals reached "engaging", 1 reached "won", so p = 0.25 (Ann
has fewer than 30 of her own: the team's ratio); the mean time in "engaging"
is 50 days and 28 days are left in February, so f = 28/50 = 0.56 and q = 0.14.
Her two open deals have no amount and are valued at their list price, 500 each:
A = 1,000, N = 2. Forecast = 1000 * 0.14 = 140 won, 2 * 0.14 = 0.28 deals;
var = 1000²/2 * 0.14 * 0.86 = 60,200, sd 245.36, p90 = 140 + 1.2816 * 245.36
= 454.45, p10 = max(0, 140 - 314.45) = 0. Actual: 2,000 and 1 deal; last
month's (January's) 1,000. South has no open deal: forecast 0, actual 0.
Were the teams mixed, p would be 2/5 and the mean time 35 days.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from salespulse.cli import main
from salespulse.forecast.backtest import MonthRow, errors
from salespulse.forecast.model import Forecast

EXPORT = """opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value
D1,Ann A,GTX Basic,,Won,2016-12-01,2017-01-20,1000
D2,Ann A,GTX Basic,,Lost,2016-12-02,2017-01-21,0
D3,Ann A,GTX Basic,,Won,2017-01-05,2017-02-10,2000
D4,Ann A,GTX Basic,,Engaging,2017-01-20,,
D5,Bo B,GTX Basic,,Won,2017-01-10,2017-01-15,300
D6,Bo B,GTX Basic,,Prospecting,,,
"""

COMPANY = """
timezone = "America/New_York"

[pipelines.opportunities]
stages = ["prospecting", "engaging", "won"]
won = ["won"]
lost = ["lost"]

[managers.ann-a]
name = "Ann A"
team = "North"

[managers.bo-b]
name = "Bo B"
team = "South"
"""


def scope(output: str, name: str) -> list[str]:
    """The table lines of one scope."""
    block = output.split(f"\n{name}\n", 1)[1].split("\n\n", 1)[0]
    return block.splitlines()


def row(lines: list[str], month: str) -> list[str]:
    (found,) = [line for line in lines if line.startswith(month)]
    return found.split()


def test_the_backtest_forecasts_february_from_what_january_knew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "sales_pipeline.csv"
    export.write_text(EXPORT, encoding="utf-8")
    company = tmp_path / "company.toml"
    company.write_text(COMPANY, encoding="utf-8")
    prices = tmp_path / "products.csv"
    prices.write_text("product,series,sales_price\nGTX Basic,GTX,500\n", encoding="utf-8")
    argv = ["forecast", "--backtest", str(export), "--config", str(company)]

    assert main([*argv, "--list-prices", str(prices)]) == 0
    output = capsys.readouterr().out
    assert "1 rows left out" in output  # the undated Prospecting deal
    north = scope(output, "North")
    # month, forecast, p10-p90, actual, last month, 3-mo mean, deals fc, actual, last, 3-mo
    february = ["2017-02", "140", "0-454", "2,000", "1,000", "-", "0.3", "1", "1.0", "-"]
    assert row(north, "2017-02") == february
    january = ["2017-01", "0", "0-0", "1,000", "-", "-", "0.0", "1", "-", "-"]
    assert row(north, "2017-01") == january
    assert row(scope(output, "South"), "2017-02")[:5] == ["2017-02", "0", "0-0", "0", "300"]
    assert row(scope(output, "company"), "2017-02")[:5] == [
        "2017-02",
        "140",
        "0-454",
        "2,000",
        "1,300",
    ]
    assert "MAPE over 0 scored months" in output  # no month has three months of history

    # Without prices the open deals are worth nothing; the deals forecast stays.
    assert main(argv) == 0
    north = scope(capsys.readouterr().out, "North")
    assert row(north, "2017-02")[1:3] == ["0", "0-0"]
    assert row(north, "2017-02")[6] == "0.3"


def test_errors_score_only_months_with_both_baselines() -> None:
    def month(
        number: int, forecast: float, actual: float, last: float | None, mean: float | None
    ) -> MonthRow:
        return MonthRow(
            date(2017, number, 1),
            Forecast(0.0, 0.0, forecast, 0.0, forecast / 100, 0.0),
            actual,
            actual / 100,
            last,
            mean,
            None if last is None else last / 100,
            None if mean is None else mean / 100,
        )

    rows = [
        month(3, 500.0, 1000.0, 900.0, None),  # no 3-month mean yet: not scored
        month(4, 900.0, 1000.0, 800.0, 1000.0),  # errors 10%, 20%, 0%
        month(5, 2200.0, 2000.0, 1000.0, 1500.0),  # errors 10%, 50%, 25%
        month(6, 100.0, 0.0, 2000.0, 1200.0),  # nothing won: no error to divide by
    ]
    found = errors(rows)
    assert found.months == 2
    assert found.value == pytest.approx(
        {"forecast": 10.0, "last month": 35.0, "3-month mean": 12.5}
    )
    assert found.deals == pytest.approx(
        {"forecast": 10.0, "last month": 35.0, "3-month mean": 12.5}
    )
