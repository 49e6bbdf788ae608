"""How much a real sales floor does at each moment of its week.

A B2B floor does most of its work on weekdays between 8:00 and 18:00 in the
company's time zone. Outside those hours it is quiet but not silent: inbound
calls, a manager finishing a proposal in the evening, a task that falls due
at night. The demo floor follows this rhythm so that a day, a week and a
month on the wall hold what a real department's would, and so that the live
demo moves at the pace of a real office instead of a compressed one.

:class:`Pace` turns the rhythm into event counts: the caller says how much
time has passed, and gets how many events the floor owes for it, with the
fractions carried over so that nothing is lost between small steps.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

__all__ = ["OFF_HOURS", "WORKDAY_HOURS", "Pace", "intensity"]

WORKDAY_HOURS = (8, 18)  # local hours, start inclusive, end exclusive
OFF_HOURS = 0.1  # activity outside working hours, relative to working hours
WORKDAYS = 5  # Monday to Friday


def intensity(moment: datetime, zone: tzinfo) -> float:
    """Activity at *moment*, relative to a weekday's working hours (1.0)."""
    local = moment.astimezone(zone)
    start, end = WORKDAY_HOURS
    if local.weekday() < WORKDAYS and start <= local.hour < end:
        return 1.0
    return OFF_HOURS


class Pace:
    """The number of events a floor of *managers* owes, *per_workday* each per working day.

    A working day's events are spread over its working hours; the quiet hours
    add their small share on top.
    """

    def __init__(self, managers: int, per_workday: float, zone: tzinfo) -> None:
        if not per_workday > 0:
            raise ValueError(f"per_workday must be positive, not {per_workday!r}")
        start, end = WORKDAY_HOURS
        self.per_second = managers * per_workday / ((end - start) * 3600.0)
        self.zone = zone
        self._owed = 0.0

    def in_office(self, now: datetime) -> bool:
        return intensity(now, self.zone) == 1.0

    def owed(self, now: datetime, seconds: float) -> int:
        """Events due for the *seconds* that end at *now*."""
        self._owed += self.per_second * intensity(now, self.zone) * max(0.0, seconds)
        whole = int(self._owed)
        self._owed -= whole
        return whole
