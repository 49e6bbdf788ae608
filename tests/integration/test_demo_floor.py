"""`salespulse demo` looks like a real sales floor within two minutes of its start.

The demo runs as a user starts it (embedded broker, worker, simulated floor
with its 30 days of history), and its /metrics is scraped until the whole
history reads as a believable department or two minutes pass. The calendar
windows are checked too, each once it holds enough closed deals to judge: a
Monday morning's day or week is rightly almost empty, since the floor works
office hours (tests/unit/salespulse/test_demo_history.py checks every window
on a fixed mid-month afternoon).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from salespulse.broker import free_port
from tests.integration.test_embedded_broker import start
from tests.support.demo_figures import problems, read
from tests.support.polling import wait_for
from tests.support.scrape import scrape, total

pytestmark = pytest.mark.integration

WITHIN_SECONDS = 120.0
HISTORY_EVENTS = 20_000  # the 30 days of history hold about 27,000 events
JUDGED_FROM_CLOSED = 100  # a window's closed deals before its ratios mean something
WEEKS = {"day": 1 / 5, "week": 1.0, "month": 31 / 7}  # at most, for the volume check


def test_the_demo_shows_a_believable_month_within_two_minutes(tmp_path: Path) -> None:
    port, wall = free_port(), free_port()
    started = time.monotonic()
    demo = start(["demo", "--metrics-port", str(port), "--wall-port", str(wall)], tmp_path, port)
    try:

        def history_plausible() -> list[str] | None:
            samples = scrape(port)
            if total(samples, "salespulse_events_total", outcome="processed") < HISTORY_EVENTS:
                return None
            found = problems(read(samples, None), weeks=30 / 7, every_manager_wins=True)
            return None if found else ["ok"]

        wait_for(history_plausible, timeout=WITHIN_SECONDS, what="a believable 30 days")
        took = time.monotonic() - started
        print(f"demo believable after {took:.1f}s")
        samples = scrape(port)
        assert len(read(samples, None).managers) == 20

        def wall_shows_the_floor() -> dict[str, Any] | None:
            try:
                with urlopen(f"http://127.0.0.1:{wall}/data.json", timeout=5) as answer:
                    data: dict[str, Any] = json.load(answer)
            except OSError:
                return None  # not serving yet
            return data if len(data.get("managers", [])) == 20 else None

        shown = wait_for(wall_shows_the_floor, timeout=30, what="the wall screen's numbers")
        assert shown["window"] == "month"
        for window in ("day", "week", "month"):
            floor = read(samples, window)
            if floor.team.closed >= JUDGED_FROM_CLOSED:
                assert problems(floor, weeks=WEEKS[window], every_manager_wins=False) == []
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
        assert demo.returncode == 0, (tmp_path / "demo.log").read_text()[-2000:]
        log = (tmp_path / "demo.log").read_text()
        assert "days of history published" in log
        assert f"http://localhost:{wall}/" in log
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
