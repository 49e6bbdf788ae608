"""The weeks before and after a date, on the company's calendar.

A week is an ISO week (Monday to Monday) in the company's time zone, as the
processor's periods are, so a boundary is local midnight whatever daylight
saving does in between (a week across the change is 167 or 169 hours long).
The date's own week is left out unless the date is its Monday: a week with
days before and after the change belongs to neither side.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Comparison:
    """Week boundaries before and after a date: each side has weeks + 1 boundaries,
    the first week starting at boundary 0."""

    day: date
    before: tuple[datetime, ...]
    after: tuple[datetime, ...]

    @property
    def weeks(self) -> int:
        return len(self.before) - 1

    @property
    def instants(self) -> tuple[datetime, ...]:
        """Every boundary, once, in order (the sides share one when the date is a Monday)."""
        return tuple(sorted(set(self.before) | set(self.after)))


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def weeks_around(day: date, weeks: int, zone: ZoneInfo) -> Comparison:
    """The *weeks* full ISO weeks before *day*'s week and the *weeks* from the first
    Monday on or after *day*."""
    if weeks < 1:
        raise ValueError("compare at least one week")
    monday = day - timedelta(days=day.weekday())
    first_after = monday if day == monday else monday + timedelta(weeks=1)
    before = tuple(
        local_midnight(monday - timedelta(weeks=weeks - k), zone) for k in range(weeks + 1)
    )
    after = tuple(local_midnight(first_after + timedelta(weeks=k), zone) for k in range(weeks + 1))
    return Comparison(day, before, after)
