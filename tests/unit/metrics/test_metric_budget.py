"""The metrics budget: series per manager, counted on a simulated month against the README.

The README's per-manager table is the metrics contract: each family, its
labels, and its series per manager for the reference company (5 products, 4
channels, 3 segments, 4 task types, the 9-stage funnel with regulations); the
total must stay within 150. A month of the simulated floor for 30 managers in
three teams goes through the real processor and exposition, and every
manager's series are counted per family.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from metrics.annotations import FAMILIES as MARKER_FAMILIES
from metrics.exposition import StateExposition
from salespulse.simulate.month import month_state, reference_settings
from tests.support.scrape import Samples, parse

README = Path(__file__).resolve().parents[3] / "README.md"
BUDGET = 150
# A Wednesday afternoon in mid-month: day, week and month all hold numbers.
END = datetime(2026, 11, 18, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))


def budget_table() -> tuple[dict[str, int], int]:
    """Family -> series per manager, and the stated total, from the README's table."""
    text = README.read_text()
    start = text.index("| metric | type | labels | series per manager | counts |")
    rows: dict[str, int] = {}
    total = -1
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == "**total**":
            total = int(cells[3].strip("*"))
            break
        names = re.findall(r"`(salespulse_[a-z_]+)`", cells[0])
        for name in names:
            rows[name] = int(cells[3]) // len(names)
    return rows, total


def family_of(sample: str, families: dict[str, int]) -> str:
    if sample in families:
        return sample
    for suffix in ("_sum", "_count"):
        if sample.endswith(suffix) and sample.removesuffix(suffix) in families:
            return sample.removesuffix(suffix)
    return sample


@pytest.fixture(scope="module")
def month() -> Samples:
    settings = reference_settings(30)
    store, events = month_state(settings, end=END)
    assert {event["type"] for event in events} >= {"deal.created", "task.overdue", "call.ended"}
    return parse(StateExposition(settings).text(store.records(), END))


def series_by_manager(samples: Samples, families: dict[str, int]) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {}
    for name, labels in samples:
        manager = dict(labels).get("manager")
        if manager and name not in MARKER_FAMILIES:  # one per company-file entry
            found.setdefault(manager, Counter())[family_of(name, families)] += 1
    return found


def test_the_readme_table_adds_up_to_its_total_within_the_budget() -> None:
    families, total = budget_table()
    assert families, "no per-manager table in the README"
    assert sum(families.values()) == total
    assert total <= BUDGET


def test_every_manager_of_a_month_stays_within_the_table_and_the_budget(month: Samples) -> None:
    families, total = budget_table()
    managers = series_by_manager(month, families)
    assert len(managers) == 30
    unlisted = {name for counts in managers.values() for name in counts} - set(families)
    assert not unlisted, f"families with a manager label missing from the README: {unlisted}"
    over = {
        (manager, name): (count, families[name])
        for manager, counts in managers.items()
        for name, count in counts.items()
        if count > families[name]
    }
    assert not over, f"above the README's series per manager (seen, stated): {over}"
    worst = max(sum(counts.values()) for counts in managers.values())
    assert worst <= total <= BUDGET
    # The month fills nearly every family: the table is not padded. Stuck deals are the
    # exception: the simulated floor moves its deals on soon, so few are stuck at a time.
    assert worst >= total - 10 - families["salespulse_stuck_deals"], (worst, total)
    assert any(counts["salespulse_stuck_deals"] for counts in managers.values())


def test_product_channel_segment_and_task_type_never_reach_a_manager(month: Samples) -> None:
    crossed = {"product", "channel", "segment", "task_type", "le"}
    carrying = {
        name for name, labels in month if "manager" in dict(labels) and crossed & set(dict(labels))
    }
    assert not carrying
    teams = {
        dict(labels).get("team") for name, labels in month if name.startswith("salespulse_team_")
    }
    assert teams == {"North", "South", "Key Accounts"}
