"""Items packed into buckets behave as a plain map of names to items would.

A random run of every operation the processor and the changelog use is
checked against a dict after each step, with enough items that the buckets
double several times; alarms and expiry are read from the packed entries
and must agree with the decoded items.
"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from streams.entities import (
    CHECK_DEADLINE,
    COMPLETION_WAIT,
    CREATION_WAIT,
    TASK_DUE,
    CallIds,
    DealState,
    RegulationCheck,
    TaskState,
)
from streams.items import Items, Name, body_of, record_of, seq_of
from streams.state import item_map


def a_task(rng: random.Random) -> TaskState:
    created = rng.random() < 0.8
    completed = rng.random() < 0.3
    return TaskState(
        task_type=rng.choice(["call", "email", 'quote "x"']),
        due_at=1_800_000_000.0 + rng.random() * 1e6 if created else None,
        created=created,
        deal_id=rng.choice([None, f"D-{rng.randrange(30)}"]),
        completed_at=1_800_000_000.0 + rng.random() * 1e6 if completed else None,
        overdue=rng.random() < 0.1,
        closed_day=rng.choice([None, 738_000 + rng.randrange(20)]),
        ids=[f"e-{rng.randrange(10**6)}" for _ in range(rng.randrange(3))],
    )


def expected_alarms(tasks: dict[Name, TaskState], offsets: dict[str, float]) -> list[Any]:
    found = []
    for name, task in tasks.items():
        waits = [at + offsets[kind] for kind, at in task.alarms() if kind in offsets]
        if waits:
            found.append((name, min(waits)))
    return sorted(found)


@pytest.mark.parametrize("seed", range(6))
def test_packed_items_behave_as_a_map(seed: int, state_engine: str) -> None:
    rng = random.Random(seed)
    items: Items[TaskState] = item_map(b"t", TaskState.from_list, 0, "m-a")
    model: dict[Name, TaskState] = {}
    names = [f"T-{n}" for n in range(400)] + ["T-1 two words", "Ünïcode-T", "T-1\\x00"]
    offsets = {TASK_DUE: 60.0, COMPLETION_WAIT: 600.0}
    for step in range(3000):
        name = rng.choice(names)
        roll = rng.random()
        if roll < 0.35:
            task = a_task(rng)
            items.put(name, task)
            model[name] = task
        elif roll < 0.5:
            got = items.get(name)
            assert got == model.get(name)
            if got is not None:
                got.ids.append(f"step-{step}")  # a change, kept by the map until packed
                model[name] = got
        elif roll < 0.6:
            items.delete(name)
            model.pop(name, None)
        elif roll < 0.7:
            raw = record_of(step, a_task(rng))[1] if rng.random() < 0.8 else None
            items.restore(name, raw)
            if raw is None:
                model.pop(name, None)
            else:
                model[name] = items.decode_list(orjson.loads(body_of(raw)))
        else:
            assert items.peek(name) == model.get(name)
        if rng.random() < 0.2:
            items.pack(step)
        if rng.random() < 0.05:
            items.rest()  # compresses when nothing used the map since the last call
        assert len(items) == len(model)
        soonest = min((at for _, at in expected_alarms(model, offsets)), default=float("inf"))
        assert items.soonest(offsets) == soonest
        assert (name in items) == (name in model)
    items.pack(9999)
    if state_engine == "memory":
        assert len(items._buckets) > 1  # they doubled on the way
    assert sorted(map(str, items.names())) == sorted(model)
    assert dict(items.peek_all()) == model
    assert sorted(items.alarms(offsets)) == expected_alarms(model, offsets)
    cutoff = 738_010
    expected = sorted(
        n for n, t in model.items() if t.closed_day is not None and t.closed_day < cutoff
    )
    assert sorted(map(str, items.expired(cutoff))) == expected
    needle = b'"D-7"'
    containing = {name for name, task in items.peek_containing(needle)}
    assert containing >= {name for name, task in model.items() if task.deal_id == "D-7"}
    for held in model:
        raw = items.raw(held)
        assert raw is not None
        assert seq_of(raw) <= 9999


def test_items_at_rest_are_compressed_and_read_as_before(state_engine: str) -> None:
    if state_engine != "memory":
        pytest.skip("RocksDB compresses what it keeps in files itself")
    rng = random.Random(7)
    items: Items[TaskState] = item_map(b"t", TaskState.from_list, 0, "m-a")
    tasks: dict[Name, TaskState] = {f"T-{n}": a_task(rng) for n in range(100)}
    for name, task in tasks.items():
        items.put(name, task)
    items.pack(1)
    resting = sum(map(len, items._buckets))
    assert items.rest() == 0  # used since the last call: kept as it is
    saved = items.rest()
    assert saved > resting / 2
    assert sum(map(len, items._buckets)) == resting - saved
    assert items.rest() == 0  # already at rest
    offsets = {TASK_DUE: 0.0, COMPLETION_WAIT: 0.0}
    assert sorted(items.alarms(offsets)) == expected_alarms(tasks, offsets)
    assert dict(items.peek_all()) == tasks
    assert sum(map(len, items._buckets)) == resting  # in use again
    assert items.rest() == 0


def test_a_packed_item_is_found_by_its_whole_name_only() -> None:
    items: Items[TaskState] = item_map(b"t", TaskState.from_list, 0, "m-a")
    items.put("T-12", TaskState(task_type="call"))
    items.put("T-1", TaskState(task_type="email"))
    items.pack(1)
    assert items.peek("T-1") == TaskState(task_type="email")
    assert items.peek("T-12") == TaskState(task_type="call")
    assert items.peek("T-") is None
    assert items.peek("12") is None


def test_changes_are_taken_as_records_once_packed() -> None:
    items: Items[TaskState] = item_map(b"t", TaskState.from_list, 0, "m-a")
    items.put("T-1", TaskState(task_type="call"))
    items.pack(4)
    changed, deleted = items.take_changes()
    assert not deleted
    [(name, value)] = changed.items()
    assert name == "T-1"
    assert isinstance(value, bytes)
    assert seq_of(value) == 4
    items.delete("T-1")
    assert items.take_changes() == ({}, {"T-1"})
    assert len(items) == 0


def test_call_days_are_named_by_their_ordinal() -> None:
    days: Items[CallIds] = item_map(b"c", CallIds.from_list, 0, "m-a")
    for day in (738_001, 738_002, 738_011):
        days.put(day, CallIds(day, {f"call-{day}"}))
    days.pack(1)
    assert sorted(days.names()) == [738_001, 738_002, 738_011]
    assert sorted(days.expired(738_010)) == [738_001, 738_002]
    assert days.peek(738_011) == CallIds(738_011, {"call-738011"})
    assert days.alarms({TASK_DUE: 0.0}) == []


def test_a_deal_waits_for_its_regulations_and_its_creation_on_different_clocks() -> None:
    deals: Items[DealState] = item_map(b"d", DealState.from_list, 0, "m-a")
    checked = DealState(pipeline="default", checks=[RegulationCheck("demo", "call", 500.0, 100.0)])
    checked.checks.append(RegulationCheck("proposal", "email", 300.0, 200.0))
    waiting = DealState(pipeline="default", pending=[("demo", None, 50.0), ("lead", None, 40.0)])
    deals.put("D-checked", checked)
    deals.put("D-waiting", waiting)
    deals.put("D-quiet", DealState(pipeline="default"))
    for packed in (False, True):
        if packed:
            deals.pack(1)
        assert deals.alarms({CHECK_DEADLINE: 0.0}) == [("D-checked", 300.0)]
        assert deals.alarms({CREATION_WAIT: 30.0}) == [("D-waiting", 70.0)]
        assert deals.soonest({CHECK_DEADLINE: 0.0, CREATION_WAIT: 30.0}) == 70.0
        assert deals.soonest({TASK_DUE: 0.0}) == float("inf")
