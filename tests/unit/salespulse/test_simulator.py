"""The simulated sales floor: contract-valid, reproducible, and true to its seed cases.

The seed-case checks measure the produced events the way the dashboards do
(deals reaching stages, tasks not done by ``due_at``, talk time of answered
calls), so a change to the model that breaks a demo story fails here first.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from salespulse import kafka_client
from salespulse.broker import free_port
from salespulse.settings import Settings, load_settings
from salespulse.simulate import SEED_PROFILES, SalesFloor, topic_for
from salespulse.simulate import publisher as publisher_module
from salespulse.simulate.publisher import (
    BrokerUnavailableError,
    bootstrap_servers,
    encode,
    publish,
)
from schemas.events import EVENT_ADAPTER, TOPIC_OF_TYPE
from tests.support.fake_producer import FakeProducer

REPO = Path(__file__).resolve().parents[3]
DEMO_CONFIG = "salespulse/config/demo.toml"
START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SPEED = 60.0
SIM_DAY = timedelta(days=1) / SPEED  # one simulated day of clock time

Event = dict[str, Any]


@dataclass
class Run:
    settings: Settings
    floor: SalesFloor
    batches: list[tuple[datetime, list[Event]]]

    @property
    def events(self) -> Iterator[Event]:
        for _, batch in self.batches:
            yield from batch

    @property
    def end(self) -> datetime:
        return self.batches[-1][0]


def drive(
    settings: Settings,
    *,
    seed: int,
    sim_days: float,
    tick: timedelta,
    per_tick: int,
    start: datetime = START,
) -> Run:
    floor = SalesFloor(settings, seed=seed, speed=SPEED)
    batches: list[tuple[datetime, list[Event]]] = []
    now = start
    end = start + SIM_DAY * sim_days
    while now <= end:
        batches.append((now, floor.step(now, per_tick)))
        now += tick
    return Run(settings, floor, batches)


@pytest.fixture(scope="module")
def demo_settings() -> Settings:
    return load_settings(config=str(REPO / DEMO_CONFIG))


@pytest.fixture(scope="module")
def long_run(demo_settings: Settings) -> Run:
    """Thirty simulated days of the demo company, in five-simulated-minute ticks."""
    return drive(demo_settings, seed=20261122, sim_days=30, tick=timedelta(seconds=5), per_tick=100)


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- (a) the contract ------------------------------------------------------------


def test_every_event_validates_and_lands_on_its_topic(long_run: Run) -> None:
    settings = long_run.settings
    family_topic = {
        "deals": settings.topic_deals,
        "tasks": settings.topic_tasks,
        "calls": settings.topic_calls,
    }
    types: Counter[str] = Counter()
    ids: set[str] = set()
    count = 0
    for event in long_run.events:
        count += 1
        model = EVENT_ADAPTER.validate_json(encode(event))
        assert model.type == event["type"]
        assert model.source == "simulator"
        assert topic_for(event, settings) == family_topic[TOPIC_OF_TYPE[event["type"]]]
        ids.add(event["event_id"])
        types[event["type"]] += 1
    assert count > 500_000
    assert len(ids) == count, "event ids repeat"
    assert set(types) == set(TOPIC_OF_TYPE)
    # task.overdue is a rare confirmation, not the rule.
    assert 0 < types["task.overdue"] < 0.1 * types["task.created"]


def test_deal_events_follow_the_funnel(long_run: Run) -> None:
    funnel = long_run.settings.pipelines["default"]
    order = {stage: index for index, stage in enumerate(funnel.stages)}
    stage_of: dict[str, str] = {}
    skips = 0
    fields: Counter[str] = Counter()
    for event in long_run.events:
        if event["type"] == "deal.created":
            assert event["stage"] == funnel.stages[0]
            assert all(event[key] for key in ("product", "channel", "segment"))
            assert event["amount"] > 0
            stage_of[event["deal_id"]] = event["stage"]
        elif event["type"] == "deal.stage_changed":
            current = stage_of[event["deal_id"]]
            assert current not in (*funnel.won, *funnel.lost), "moved after closing"
            assert event["from_stage"] == current
            assert event["amount"] > 0
            target = event["to_stage"]
            if target not in funnel.lost:
                step = order[target] - order[current]
                assert step in (1, 2)
                skips += step == 2
            stage_of[event["deal_id"]] = target
        elif event["type"] == "task.created":
            fields[event["task_type"]] += 1
            assert parse(event["due_at"]) > parse(event["occurred_at"])
    assert skips > 0, "no deal ever skipped a stage"
    assert set(fields) == {"call", "meeting", "proposal", "email"}


def test_calls_have_direction_and_unanswered_ones_have_no_talk_time(long_run: Run) -> None:
    answered = Counter[bool]()
    directions = Counter[str]()
    for event in long_run.events:
        if event["type"] != "call.ended":
            continue
        directions[event["direction"]] += 1
        answered[event["answered"]] += 1
        assert (event["duration_seconds"] > 0) == event["answered"]
    assert directions["inbound"] > 0
    assert directions["outbound"] > directions["inbound"]
    assert 0.05 < answered[False] / (answered[False] + answered[True]) < 0.4


# -- (b) reproducibility ---------------------------------------------------------------


def test_same_seed_same_events(demo_settings: Settings) -> None:
    def run(seed: int, start: datetime = START) -> list[Event]:
        result = drive(
            demo_settings,
            seed=seed,
            sim_days=2,
            tick=timedelta(seconds=7),
            per_tick=13,
            start=start,
        )
        return list(result.events)

    first = run(7)
    assert first == run(7)
    assert [e["type"] for e in first] != [e["type"] for e in run(8)]
    # A second run started later must not reuse ids, or a processor would take it for a replay.
    later = run(7, START + timedelta(hours=1))
    assert not {e["event_id"] for e in first} & {e["event_id"] for e in later}
    assert not {e.get("deal_id") for e in first} - {None} & {e.get("deal_id") for e in later}


# -- (c) the seed cases -------------------------------------------------------------------


def test_seed_profiles_go_to_the_first_managers(demo_settings: Settings) -> None:
    floor = SalesFloor(demo_settings, seed=1)
    assert len(floor.managers) == 20
    assert [m.profile for m in floor.managers[:4]] == list(SEED_PROFILES)
    assert [m.manager_id for m in floor.managers[:4]] == ["m-01", "m-02", "m-03", "m-04"]
    assert floor.manager("m-02").name == demo_settings.managers["m-02"].name

    generated = SalesFloor(Settings(), seed=1)
    assert [m.manager_id for m in generated.managers] == [f"m-{n:02d}" for n in range(1, 21)]


def test_overdue_share_delinquent_vs_team(long_run: Run) -> None:
    due: dict[str, datetime] = {}
    owner: dict[str, str] = {}
    done: dict[str, datetime] = {}
    for event in long_run.events:
        if event["type"] == "task.created":
            due[event["task_id"]] = parse(event["due_at"])
            owner[event["task_id"]] = event["manager_id"]
        elif event["type"] == "task.completed":
            assert event["task_id"] not in done, "task completed twice"
            done[event["task_id"]] = parse(event["occurred_at"])
    overdue: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for task_id, deadline in due.items():
        if deadline > long_run.end:
            continue
        total[owner[task_id]] += 1
        if task_id not in done or done[task_id] > deadline:
            overdue[owner[task_id]] += 1
    share = {manager: overdue[manager] / total[manager] for manager in total}
    assert total["m-01"] > 3000
    assert 0.40 <= share["m-01"] <= 0.48
    for manager, value in share.items():
        if manager != "m-01":
            assert 0.07 <= value <= 0.18, (manager, value)


def test_overdue_confirmations_come_after_the_deadline(long_run: Run) -> None:
    due: dict[str, datetime] = {}
    completed: dict[str, datetime] = {}
    confirmed: dict[str, datetime] = {}
    for event in long_run.events:
        if event["type"] == "task.created":
            due[event["task_id"]] = parse(event["due_at"])
        elif event["type"] == "task.completed":
            completed[event["task_id"]] = parse(event["occurred_at"])
        elif event["type"] == "task.overdue":
            assert event["task_id"] not in completed, "confirmed after completion"
            confirmed[event["task_id"]] = parse(event["occurred_at"])
    assert confirmed
    for task_id, when in confirmed.items():
        assert when > due[task_id]
        assert task_id not in completed or completed[task_id] > when


def test_long_caller_vs_team(long_run: Run) -> None:
    talk: dict[str, list[float]] = defaultdict(list)
    for event in long_run.events:
        if event["type"] == "call.ended" and event["answered"]:
            talk[event["manager_id"]].append(event["duration_seconds"])
    long_caller = statistics.mean(talk["m-02"]) / 60
    team = [d for manager, values in talk.items() if manager != "m-02" for d in values]
    team_mean = statistics.mean(team) / 60
    assert 30.0 <= long_caller <= 34.0
    assert 14.0 <= team_mean <= 16.0
    for manager, values in talk.items():
        if manager != "m-02":
            assert 12.5 <= statistics.mean(values) / 60 <= 17.5, manager


def test_converters_and_the_stage_four_drop(long_run: Run) -> None:
    stages = long_run.settings.pipelines["default"].stages
    # Deals created in the first 18 days have all closed by day 30.
    cutoff = START + SIM_DAY * 18
    owner: dict[str, str] = {}
    reached: dict[str, set[str]] = {}
    outcome: dict[str, str] = {}
    for event in long_run.events:
        if event["type"] == "deal.created" and parse(event["occurred_at"]) < cutoff:
            owner[event["deal_id"]] = event["manager_id"]
            reached[event["deal_id"]] = {event["stage"]}
        elif event["type"] == "deal.stage_changed" and event["deal_id"] in owner:
            reached[event["deal_id"]].add(event["to_stage"])
            if event["to_stage"] in ("won", "lost"):
                outcome[event["deal_id"]] = event["to_stage"]
    assert outcome.keys() == owner.keys(), "deals of the cohort still open"

    created: Counter[str] = Counter(owner.values())
    won: Counter[str] = Counter(owner[d] for d, result in outcome.items() if result == "won")
    stage_count: dict[str, Counter[str]] = defaultdict(Counter)
    for deal_id, seen in reached.items():
        stage_count[owner[deal_id]].update(seen)

    def transitions(managers: list[str]) -> list[float]:
        counts = [sum(stage_count[m][stage] for m in managers) for stage in stages]
        return [counts[k + 1] / counts[k] for k in range(len(stages) - 1)]

    strong = won["m-03"] / created["m-03"]
    weak = won["m-04"] / created["m-04"]
    team_ids = [m for m in created if m not in ("m-03", "m-04")]
    team = sum(won[m] for m in team_ids) / sum(created[m] for m in team_ids)
    assert created["m-04"] > 1500
    assert 0.13 <= strong <= 0.19
    assert 0.028 <= weak <= 0.052
    assert 0.075 <= team <= 0.105
    assert strong > team > weak

    weak_steps = transitions(["m-04"])
    drop = weak_steps[3]  # stage 4 (needs_analysis) -> stage 5 (demo)
    assert drop < 0.35
    assert all(value > 0.55 for k, value in enumerate(weak_steps) if k != 3), weak_steps
    assert transitions(team_ids)[3] > 0.6


# -- (d) event time ----------------------------------------------------------------


def test_occurred_at_follows_the_clock(long_run: Run) -> None:
    previous: datetime | None = None
    for now, batch in long_run.batches:
        for event in batch:
            occurred = parse(event["occurred_at"])
            assert occurred.utcoffset() is not None
            assert occurred <= now
            assert previous is None or occurred >= previous
            previous = occurred
        if batch:
            assert parse(batch[-1]["occurred_at"]) == now
    assert sum(len(batch) for _, batch in long_run.batches) == 100 * len(long_run.batches)


def test_a_demo_minute_shows_completed_overdue_and_closed(demo_settings: Settings) -> None:
    """At the default speed a minute of wall time already has every kind of outcome."""
    run = drive(demo_settings, seed=3, sim_days=1 / 24, tick=timedelta(seconds=1), per_tick=20)
    assert run.end - START == timedelta(minutes=1)
    events = list(run.events)
    completed = {e["task_id"] for e in events if e["type"] == "task.completed"}
    overdue = [
        e
        for e in events
        if e["type"] == "task.created"
        and parse(e["due_at"]) < run.end
        and e["task_id"] not in completed
    ]
    assert completed
    assert overdue
    assert any(e["type"] == "deal.stage_changed" and e["to_stage"] == "lost" for e in events)


def test_clock_misuse_is_refused(demo_settings: Settings) -> None:
    floor = SalesFloor(demo_settings, seed=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        floor.step(datetime(2026, 3, 2, 7, 0), 1)
    floor.step(START, 1)
    with pytest.raises(ValueError, match="backwards"):
        floor.step(START - timedelta(seconds=1), 1)
    with pytest.raises(ValueError, match="speed"):
        SalesFloor(demo_settings, speed=0)


def test_topic_for_uses_configured_names() -> None:
    settings = Settings(topic_deals="a.deals", topic_tasks="a.tasks", topic_calls="a.calls")
    assert topic_for({"type": "deal.stage_changed"}, settings) == "a.deals"
    assert topic_for({"type": "task.overdue"}, settings) == "a.tasks"
    assert topic_for({"type": "call.ended"}, settings) == "a.calls"
    with pytest.raises(ValueError, match="no topic"):
        topic_for({"type": "deal.deleted"}, settings)


# -- (e) the demo configuration -----------------------------------------------------


def test_demo_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    settings = load_settings(config=DEMO_CONFIG)
    assert settings.timezone == "Europe/Berlin"
    funnel = settings.pipelines["default"]
    assert len(funnel.stages) == 9
    assert funnel.stages[-1] == "won"
    assert funnel.stages[3:5] == ("needs_analysis", "demo")
    assert funnel.lost == ("lost",)
    assert settings.kpi.max_overdue_rate == 0.20
    assert settings.kpi.max_avg_call_duration_seconds == 900
    assert sorted(settings.managers) == [f"m-{n:02d}" for n in range(1, 21)]
    assert 2 <= len({m.team for m in settings.managers.values()}) <= 3
    assert all(m.name for m in settings.managers.values())
    personal = {
        manager_id: m.kpi.max_avg_call_duration_seconds
        for manager_id, m in settings.managers.items()
        if m.kpi.max_avg_call_duration_seconds is not None
    }
    assert personal == {"m-02": 1620}


# -- the publisher, against a stand-in producer or a port where nothing listens ------


@pytest.fixture
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.instances = []
    monkeypatch.setattr(kafka_client, "AIOKafkaProducer", FakeProducer)
    return FakeProducer


def test_bootstrap_servers() -> None:
    assert bootstrap_servers("kafka://h1:9092;h2:9093") == ["h1:9092", "h2:9093"]
    assert bootstrap_servers("kafka://h1:9092,h2:9093") == ["h1:9092", "h2:9093"]
    assert bootstrap_servers("kafka://localhost:9092") == ["localhost:9092"]
    with pytest.raises(ValueError, match="no host"):
        bootstrap_servers("kafka://")


async def test_publish_needs_a_broker() -> None:
    with pytest.raises(ValueError, match="no broker"):
        await publish(Settings(), rate=10, seed=1, speed=60, limit=1)


async def test_publish_sends_keyed_compact_json(fake_producer: type[FakeProducer]) -> None:
    settings = Settings(broker="kafka://h1:9092;h2:9092")
    count = await publish(settings, rate=2000, seed=1, speed=60, limit=150)
    assert count == 150
    (producer,) = fake_producer.instances
    assert producer.config["acks"] == "all"
    assert producer.config["bootstrap_servers"] == ["h1:9092", "h2:9092"]
    assert producer.stopped
    assert len(producer.sent) == 150
    for topic, key, value in producer.sent:
        event = json.loads(value)
        assert key == event["manager_id"].encode()
        assert topic == topic_for(event, settings)
        assert b'":' in value
        assert b'": ' not in value
        EVENT_ADAPTER.validate_json(value)


async def test_publish_stops_on_the_stop_event_while_waiting_for_the_broker() -> None:
    stop = asyncio.Event()
    stop.set()
    nobody_listens = Settings(broker=f"kafka://127.0.0.1:{free_port()}")
    async with asyncio.timeout(5):
        count = await publish(nobody_listens, rate=100, seed=1, speed=60, stop=stop)
    assert count == 0


async def test_publish_gives_up_on_an_absent_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher_module, "CONNECT_TIMEOUT_SECONDS", 1.0)
    where = f"127.0.0.1:{free_port()}"
    with pytest.raises(BrokerUnavailableError) as caught:
        await publish(Settings(broker=f"kafka://{where}"), rate=100, seed=1, speed=60, limit=1)
    message = str(caught.value)
    assert message.startswith(f"the broker at {where} did not answer within 1 s")
    assert message.endswith("; is it running, and is SALESPULSE_BROKER right?")
