"""The report's arithmetic: ISO weeks in the company's time zone, and percent changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from salespulse.report.figures import TOTALS, figures, format_change, percent_change
from salespulse.report.periods import weeks_around

BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def test_a_monday_starts_the_weeks_after_and_ends_the_weeks_before() -> None:
    weeks = weeks_around(date(2026, 11, 2), 4, BERLIN)
    # Summer time ended on 25 October: boundaries stay at local midnight on both sides.
    assert [b.astimezone(UTC) for b in weeks.before] == [
        utc(2026, 10, 4, 22),
        utc(2026, 10, 11, 22),
        utc(2026, 10, 18, 22),
        utc(2026, 10, 25, 23),
        utc(2026, 11, 1, 23),
    ]
    assert weeks.after[0] == weeks.before[-1]
    assert weeks.after[-1].astimezone(UTC) == utc(2026, 11, 29, 23)
    assert len(weeks.instants) == 9


def test_a_midweek_date_leaves_its_own_week_out() -> None:
    weeks = weeks_around(date(2026, 3, 25), 2, BERLIN)  # a Wednesday; DST begins 29 March
    assert [b.date() for b in weeks.before] == [
        date(2026, 3, 9),
        date(2026, 3, 16),
        date(2026, 3, 23),
    ]
    assert [b.date() for b in weeks.after] == [
        date(2026, 3, 30),
        date(2026, 4, 6),
        date(2026, 4, 13),
    ]
    assert weeks.after[0].astimezone(UTC) == utc(2026, 3, 29, 22)  # CEST
    assert weeks.before[-1].astimezone(UTC) == utc(2026, 3, 22, 23)  # CET
    assert len(weeks.instants) == 6


def test_at_least_one_week() -> None:
    with pytest.raises(ValueError, match="at least one week"):
        weeks_around(date(2026, 11, 2), 0, BERLIN)


def test_percent_change_and_nothing_to_compare_with() -> None:
    assert percent_change(10000, 11590) == pytest.approx(15.9)
    assert percent_change(32, 23) == pytest.approx(-28.125)
    assert percent_change(0, 5) is None
    assert percent_change(None, 0.2) is None
    assert format_change(None) == "n/a"
    assert format_change(15.9) == "+15.9%"


def test_ratios_without_a_denominator_are_absent_not_zero() -> None:
    empty = dict.fromkeys(TOTALS, 0.0)
    assert figures(empty) == {
        "throughput": 0.0,
        "conversion": None,
        "overdue_rate": None,
        "average_call": None,
        "won_value": 0.0,
    }
