"""The demo floor's history: a month a sales director would believe, at a real pace.

The history of ``salespulse demo`` goes through the real processor and
exposition here, ending late on a Wednesday afternoon in mid-month so that
the day, the week and the month all hold a fair share of work (a day's wins
are a handful for the whole floor, and early in the day there may be none).
The same checks run against a live demo in tests/integration/test_demo_floor.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from metrics.exposition import StateExposition
from salespulse.config import DEMO_CONFIG
from salespulse.settings import Settings, load_settings
from salespulse.simulate.floor import Event
from salespulse.simulate.history import demo_floor, demo_pace, history
from salespulse.simulate.month import replay
from salespulse.simulate.pace import Pace, intensity
from tests.support.demo_figures import problems, read
from tests.support.scrape import Samples, parse

BERLIN = ZoneInfo("Europe/Berlin")
END = datetime(2026, 11, 18, 17, 30, tzinfo=BERLIN)
WEEKS = {"day": 1 / 5, "week": 3 / 5, "month": 18 / 7}  # weeks of work in each window


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(config=str(DEMO_CONFIG))


@pytest.fixture(scope="module")
def events(settings: Settings) -> list[Event]:
    floor = demo_floor(settings, seed=7)
    return history(floor, demo_pace(floor, settings), end=END)


@pytest.fixture(scope="module")
def samples(settings: Settings, events: list[Event]) -> Samples:
    store = replay(settings, events, now=END)
    return parse(StateExposition(settings).text(store.records(), END))


@pytest.mark.parametrize("window", ["day", "week", "month"])
def test_every_window_looks_like_a_real_floor(samples: Samples, window: str) -> None:
    floor = read(samples, window)
    assert len(floor.managers) == 20
    assert problems(floor, weeks=WEEKS[window], every_manager_wins=window == "month") == []


def test_thirty_days_look_like_a_real_floor(samples: Samples, events: list[Event]) -> None:
    assert problems(read(samples, None), weeks=30 / 7, every_manager_wins=True) == []
    # A few new deals a working day per manager (about 21 working days), not dozens.
    created = Counter(event["manager_id"] for event in events if event["type"] == "deal.created")
    assert len(created) == 20
    assert all(2 * 21 <= count <= 8 * 21 for count in created.values()), created


def test_history_spans_the_days_in_event_time_of_the_company_zone(events: list[Event]) -> None:
    times = [datetime.fromisoformat(event["occurred_at"]) for event in events]
    assert times == sorted(times)
    assert END - timedelta(days=30) < times[0] < END - timedelta(days=29)
    assert END - timedelta(minutes=10) <= times[-1] <= END
    assert all(time.utcoffset() == time.astimezone(BERLIN).utcoffset() for time in times)
    assert {time.utcoffset() for time in times} == {timedelta(hours=2), timedelta(hours=1)}
    days = Counter(time.date() for time in times)
    assert len(days) == 31  # every calendar day, the first and last in part
    weekday = [count for day, count in days.items() if day.weekday() < 5]
    weekend = [count for day, count in days.items() if day.weekday() >= 5]
    assert min(weekday[1:-1]) > 3 * max(weekend)
    office = sum(intensity(time, BERLIN) == 1.0 for time in times)
    assert office / len(times) > 0.6


def test_deals_name_customers_and_key_accounts_buy_again(events: list[Event]) -> None:
    created = [event for event in events if event["type"] == "deal.created"]
    assert all(event["customer_id"].startswith("CU-") for event in created)
    enterprise = Counter(e["customer_id"] for e in created if e["segment"] == "enterprise")
    assert max(enterprise.values()) >= 3
    smb = Counter(e["customer_id"] for e in created if e["segment"] == "smb")
    assert len(smb) > len(enterprise)


def test_history_continues_into_the_same_floor(settings: Settings) -> None:
    """The live floor carries on the history's deals: stage moves of deals created
    before the history ended come after it."""
    floor = demo_floor(settings, seed=7)
    pace = demo_pace(floor, settings)
    past = history(floor, pace, end=END, days=5)
    created = {event["deal_id"] for event in past if event["type"] == "deal.created"}
    later = END + timedelta(hours=4)
    live = floor.step(later, pace.owed(later, 4 * 3600), on_schedule=True)
    moved = {event["deal_id"] for event in live if event["type"] == "deal.stage_changed"}
    assert moved & created


def test_pace_spreads_a_working_day_over_office_hours() -> None:
    pace = Pace(managers=20, per_workday=18, zone=BERLIN)
    monday = datetime(2026, 11, 16, 0, 0, tzinfo=BERLIN)
    hours = [monday + timedelta(hours=hour) for hour in range(1, 24 * 7 + 1)]
    owed = [pace.owed(hour, 3600) for hour in hours]
    office = sum(n for hour, n in zip(hours, owed, strict=True) if intensity(hour, BERLIN) == 1)
    assert office == pytest.approx(5 * 20 * 18, abs=1)
    assert sum(owed) - office == pytest.approx(0.1 * 20 * 18 / 10 * (7 * 24 - 50), abs=1)
    with pytest.raises(ValueError, match="per_workday must be positive"):
        Pace(managers=20, per_workday=0, zone=BERLIN)
