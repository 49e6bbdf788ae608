"""Calendar periods by event time in the company's time zone.

Windows are calendar periods (day, ISO week starting Monday, month), not
sliding windows: a sales director's "this week" is Monday 00:00 local time,
whatever the UTC offset did in between (DST changes included).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

Window = Literal["day", "week", "month"]
WINDOWS: tuple[Window, ...] = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class Period:
    window: Window
    key: str  # e.g. "day:2026-11-23", "week:2026-W48", "month:2026-11"
    start: datetime  # aware, in the company zone
    end: datetime  # exclusive
    # The end as epoch seconds, computed once: every event compares against it, and
    # converting an aware datetime looks up the zone's offset each time.
    end_epoch: float


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Midnight exists in every zone salespulse supports; fold=0 picks the first
    # occurrence should a zone ever repeat it.
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def period_of(moment: datetime, window: Window, zone: ZoneInfo) -> Period:
    """The calendar period of *window* that contains the aware *moment*."""
    local = moment.astimezone(zone)
    today = local.date()
    if window == "day":
        first, after = today, today + timedelta(days=1)
        key = f"day:{today.isoformat()}"
    elif window == "week":
        first = today - timedelta(days=today.weekday())
        after = first + timedelta(days=7)
        iso_year, iso_week, _ = today.isocalendar()
        key = f"week:{iso_year:04d}-W{iso_week:02d}"
    else:
        first = today.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        key = f"month:{first.year:04d}-{first.month:02d}"
    end = _local_midnight(after, zone)
    return Period(window, key, _local_midnight(first, zone), end, end.timestamp())


def periods_of(moment: datetime, zone: ZoneInfo) -> tuple[Period, Period, Period]:
    """Day, week and month containing *moment*; cached per local day (a hot path)."""
    return _periods_of_day(moment.astimezone(zone).date(), zone)


@lru_cache(maxsize=4096)
def _periods_of_day(day: date, zone: ZoneInfo) -> tuple[Period, Period, Period]:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    return (
        period_of(noon, "day", zone),
        period_of(noon, "week", zone),
        period_of(noon, "month", zone),
    )


def day_ordinal(moment: datetime, zone: ZoneInfo) -> int:
    """Local calendar day as an ordinal: used to bucket and expire dedupe memory."""
    return moment.astimezone(zone).date().toordinal()
