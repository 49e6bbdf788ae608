"""A month of the simulated floor in event time, and the state it leaves behind.

Used wherever the size of a real company's month matters: how many series a
manager exports (the metrics budget test), what one scrape costs at 1,000 and
10,000 managers (the bench), what the rules read once Prometheus holds a week
of history (the rule-cost test). The floor runs at real speed, so deals take
hours to days per stage and tasks have real deadlines; the events span
``days`` of event time ending at ``end``, and the state is built by the real
processor, in memory, without a broker.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from salespulse.config import DEMO_CONFIG
from salespulse.settings import LabelLimits, Manager, Settings, load_settings
from salespulse.simulate.floor import SalesFloor, topic_for
from schemas.partitioning import Placement
from streams.processor import Processor, RawMessage
from streams.store import StateStore

Event = dict[str, Any]

# The company the metrics budget is stated for (README, "Metrics out").
REFERENCE_PRODUCTS = ("crm-starter", "crm-pro", "analytics", "telephony", "implementation")
REFERENCE_CHANNELS = ("website", "referral", "cold-outreach", "partner")
REFERENCE_SEGMENTS = ("smb", "mid-market", "enterprise")
REFERENCE_TASK_TYPES = ("call", "email", "meeting", "proposal")
REFERENCE_TEAMS = ("North", "South", "Key Accounts")

# The floor's own rate of work per manager and day of event time: new deals,
# calls and ad-hoc tasks, besides the moves, tasks and completions those plan.
EVENTS_PER_MANAGER_DAY = 40
STEP = timedelta(minutes=10)


def reference_settings(managers: int, **overrides: Any) -> Settings:
    """The demo company's funnel, regulations and KPIs with the reference label lists and
    *managers* managers (``m-0001`` ...) in three teams, instead of the demo's own."""
    width = max(4, len(str(managers)))
    roster = {
        f"m-{number:0{width}d}": Manager(
            name=f"Manager {number}", team=REFERENCE_TEAMS[(number - 1) % len(REFERENCE_TEAMS)]
        )
        for number in range(1, managers + 1)
    }
    labels = LabelLimits(
        products=list(REFERENCE_PRODUCTS),
        channels=list(REFERENCE_CHANNELS),
        segments=list(REFERENCE_SEGMENTS),
        task_types=list(REFERENCE_TASK_TYPES),
    )
    demo = load_settings(config=str(DEMO_CONFIG), **overrides)
    return demo.model_copy(update={"managers": roster, "labels": labels})


def month_events(
    settings: Settings,
    *,
    end: datetime,
    days: float = 30.0,
    seed: int = 3,
    per_manager_day: float = EVENTS_PER_MANAGER_DAY,
) -> list[Event]:
    """The floor's events over *days* of event time ending at *end*, in the order given."""
    floor = SalesFloor(settings, seed=seed, speed=1.0)
    managers = len(floor.managers)
    clock = end - timedelta(days=days)
    per_step = per_manager_day * managers * STEP.total_seconds() / 86400.0
    owed = 0.0
    events: list[Event] = []
    while clock < end:
        clock = min(clock + STEP, end)
        owed += per_step
        wanted = int(owed)
        owed -= wanted
        events.extend(floor.step(clock, wanted))
    return events


def replay(
    settings: Settings, events: Iterable[Event], *, now: datetime, batch: int = 2000
) -> StateStore:
    """The state the processor builds from *events*, each on the partition its manager
    maps to, taken in order a *batch* at a time as a live worker takes them; at the end
    the wall clock's deadline check runs at *now* and everything counts as written."""
    placement = Placement(settings.partitions)
    store = StateStore()
    processor = Processor(settings, store, clock=lambda: now, placement=placement)
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    chunk: dict[tuple[str, int], list[RawMessage]] = defaultdict(list)

    def flush() -> None:
        for (topic, _), messages in sorted(chunk.items()):
            processor.record_outputs(processor.process(topic, messages))
        chunk.clear()

    for count, event in enumerate(events, 1):
        key = str(event["manager_id"]).encode()
        source = (topic_for(event, settings), placement(key))
        offset = offsets[source]
        offsets[source] = offset + 1
        chunk[source].append(RawMessage(source[1], offset, key, json.dumps(event).encode()))
        if count % batch == 0:
            flush()
    flush()
    processor.tick(set(range(settings.partitions)), now.timestamp())
    store.written(store.drain())
    return store


def month_state(
    settings: Settings, *, end: datetime, days: float = 30.0, seed: int = 3
) -> tuple[StateStore, Sequence[Event]]:
    """A month of the floor replayed: the state, and the events it came from."""
    events = month_events(settings, end=end, days=days, seed=seed)
    return replay(settings, events, now=end), events
