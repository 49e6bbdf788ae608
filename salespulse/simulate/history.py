"""The demo floor and its recent past: the last days of event time, up to now.

A demo that starts empty shows nothing a director recognises for days of real
time: no deal gets through eight stages in minutes at a real pace, so wins,
won value and conversions stay at zero. The demo floor therefore starts with
its own history, the events of the last ``days`` in the company's time zone
at a real floor's pace (:mod:`salespulse.simulate.pace`), and then carries on
live from the very same state: the deals opened in the history move on, and
the tasks it set fall due, in real time.

The demo floor runs at real speed (a stage takes hours to days) and leaves
most failed early-stage leads open instead of closing them as lost, as real
managers do; everything else, the four seed cases included, is the floor of
:mod:`salespulse.simulate.floor` with the given seed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from salespulse.settings import Settings
from salespulse.simulate.floor import Event, SalesFloor
from salespulse.simulate.pace import Pace

__all__ = [
    "DEMO_STALL_SHARE",
    "HISTORY_DAYS",
    "PER_WORKDAY",
    "demo_floor",
    "demo_pace",
    "history",
    "step",
]

HISTORY_DAYS = 30.0
# New work per manager and working day: new deals, calls and ad-hoc tasks;
# the stage moves, tasks and completions they bring come on top.
PER_WORKDAY = 14.0
DEMO_STALL_SHARE = 0.6
STEP = timedelta(minutes=5)


def demo_floor(settings: Settings, seed: int) -> SalesFloor:
    """The floor behind ``salespulse demo``: real speed, failed leads mostly left open."""
    return SalesFloor(settings, seed=seed, speed=1.0, stall_share=DEMO_STALL_SHARE)


def demo_pace(floor: SalesFloor, settings: Settings, per_workday: float = PER_WORKDAY) -> Pace:
    return Pace(len(floor.managers), per_workday, ZoneInfo(settings.timezone))


def step(floor: SalesFloor, pace: Pace, now: datetime, seconds: float) -> list[Event]:
    """The floor's events for the *seconds* up to *now*: in office hours the new work
    the pace owes and all planned work that is due; outside them the little the pace
    owes, planned work first, the rest waiting for the next office hours."""
    return floor.step(now, pace.owed(now, seconds), on_schedule=pace.in_office(now))


def history(
    floor: SalesFloor, pace: Pace, *, end: datetime, days: float = HISTORY_DAYS
) -> list[Event]:
    """The floor's events from *days* before *end* up to *end*, stamped with event time.

    The floor's clock stands at *end* afterwards; continue it from there.
    """
    if days < 0:
        raise ValueError(f"days must not be negative, not {days!r}")
    clock = end - timedelta(days=days)
    events: list[Event] = []
    while clock < end:
        later = min(clock + STEP, end)
        events.extend(step(floor, pace, later, (later - clock).total_seconds()))
        clock = later
    return events
