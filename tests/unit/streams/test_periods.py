"""Calendar periods by event time in a non-UTC zone: month end, DST, ISO week."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from streams.periods import day_ordinal, period_of, periods_of

BERLIN = ZoneInfo("Europe/Berlin")
MOSCOW = ZoneInfo("Europe/Moscow")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_month_end_is_local_midnight_not_utc_midnight() -> None:
    # 23:30 UTC on 31 Oct is already 1 Nov in Moscow (UTC+3) but still 31 Oct in UTC.
    moment = utc("2026-10-31T23:30:00")
    month = period_of(moment, "month", MOSCOW)
    assert month.key == "month:2026-11"
    assert month.start == datetime(2026, 11, 1, tzinfo=MOSCOW)
    assert period_of(moment, "day", MOSCOW).key == "day:2026-11-01"
    assert period_of(utc("2026-10-31T20:59:59"), "month", MOSCOW).key == "month:2026-10"


def test_december_rolls_into_next_year() -> None:
    month = period_of(utc("2026-12-31T12:00:00"), "month", BERLIN)
    assert month.key == "month:2026-12"
    assert month.end == datetime(2027, 1, 1, tzinfo=BERLIN)


def test_dst_change_day_has_23_hours_and_keeps_local_midnights() -> None:
    # Berlin springs forward on 29 March 2026: that local day lasts 23 hours.
    day = period_of(utc("2026-03-29T12:00:00"), "day", BERLIN)
    assert day.key == "day:2026-03-29"
    assert day.end.timestamp() - day.start.timestamp() == 23 * 3600
    assert day.start.utcoffset() != day.end.utcoffset()
    # Autumn back on 25 October 2026: 25 hours.
    autumn = period_of(utc("2026-10-25T12:00:00"), "day", BERLIN)
    assert (autumn.end.timestamp() - autumn.start.timestamp()) == 25 * 3600


def test_event_just_before_local_midnight_across_dst_stays_in_its_day() -> None:
    # 21:59 UTC on 28 Mar = 22:59 CET; 22:00 UTC = 23:00 CET, still 28 Mar.
    assert period_of(utc("2026-03-28T22:59:59"), "day", BERLIN).key == "day:2026-03-28"
    assert period_of(utc("2026-03-28T23:00:00"), "day", BERLIN).key == "day:2026-03-29"


def test_iso_week_starts_monday_local_time_and_crosses_years() -> None:
    # Sunday 3 Jan 2027 belongs to ISO week 2026-W53; Monday 4 Jan starts 2027-W01.
    sunday = period_of(datetime(2027, 1, 3, 23, 59, tzinfo=BERLIN), "week", BERLIN)
    monday = period_of(datetime(2027, 1, 4, 0, 0, tzinfo=BERLIN), "week", BERLIN)
    assert sunday.key == "week:2026-W53"
    assert monday.key == "week:2027-W01"
    assert sunday.end == monday.start == datetime(2027, 1, 4, tzinfo=BERLIN)
    assert monday.start.weekday() == 0


def test_week_boundary_depends_on_zone() -> None:
    # Sunday 22:30 UTC is Monday 01:30 in Moscow: a new week there, not in UTC.
    moment = utc("2026-11-22T22:30:00")
    assert period_of(moment, "week", MOSCOW).key == "week:2026-W48"
    assert period_of(moment, "week", ZoneInfo("UTC")).key == "week:2026-W47"


def test_periods_contain_the_moment() -> None:
    moment = utc("2026-11-23T10:15:00")
    for period in periods_of(moment, BERLIN):
        assert period.start <= moment < period.end


def test_day_ordinal_is_local() -> None:
    assert day_ordinal(utc("2026-10-31T23:30:00"), MOSCOW) == datetime(2026, 11, 1).toordinal()
