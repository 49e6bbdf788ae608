"""The state store across writes cut short: whatever a crash leaves, a restart is exact.

A changelog write sends cores (with the items they embed), then the items'
own records, then the progress. The harness can stop a write after any step
and restart from what reached the 'broker'; the messages since the last
complete write are then delivered again, as Kafka does. Every number must
equal an uninterrupted run.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import orjson
import pytest

from metrics.exposition import StateExposition
from streams.entities import DealState
from streams.items import Items, body_of, seq_of
from streams.processor import RawMessage
from streams.state import ManagerState, item_key, item_map, manager_key
from tests.support.harness import (
    CALLS,
    DEALS,
    NOW,
    TASKS,
    Harness,
    call,
    deal_created,
    stage_changed,
    task_completed,
    task_created,
)


def story(
    rng: random.Random, managers: int = 3, deals: int = 12
) -> list[tuple[str, dict[str, Any]]]:
    """A floor's worth of deals moving, tasks created and done, calls, some re-sent."""
    start = NOW - timedelta(hours=6)
    events: list[tuple[float, str, dict[str, Any]]] = []
    stages = ["qualified", "contacted", "proposal", "negotiation", "won"]
    for n in range(deals):
        manager = f"m-{n % managers}"
        at = start + timedelta(minutes=rng.randint(0, 200))
        events.append((at.timestamp(), DEALS, deal_created(manager, f"D{n}", at)))
        for stage in stages[: rng.randint(1, len(stages))]:
            at += timedelta(minutes=rng.randint(1, 30))
            events.append((at.timestamp(), DEALS, stage_changed(manager, f"D{n}", stage, at)))
        task_at = start + timedelta(minutes=rng.randint(0, 200))
        due = task_at + timedelta(minutes=rng.randint(10, 120))
        task = task_created(
            manager, f"T{n}", rng.choice(["call", "proposal"]), task_at, due, deal_id=f"D{n}"
        )
        events.append((task_at.timestamp(), TASKS, task))
        if rng.random() < 0.7:
            done = task_at + timedelta(minutes=rng.randint(5, 150))
            events.append((done.timestamp(), TASKS, task_completed(manager, f"T{n}", done)))
        for c in range(rng.randint(0, 3)):
            at_call = start + timedelta(minutes=rng.randint(0, 300))
            events.append(
                (
                    at_call.timestamp(),
                    CALLS,
                    call(manager, f"C{n}-{c}", rng.randint(0, 900), at_call),
                )
            )
    events.sort(key=lambda entry: entry[0])
    ordered = [(topic, event) for _, topic, event in events]
    resent = [entry for entry in ordered if rng.random() < 0.1]
    for entry in resent:  # webhooks retried a little later
        ordered.insert(min(len(ordered), ordered.index(entry) + rng.randint(1, 5)), entry)
    return ordered


def numbers(h: Harness) -> dict[str, Any]:
    """Everything a metric is made of, per manager."""
    found: dict[str, Any] = {}
    for state in h.store.managers_in():
        found[state.manager_id] = (
            dict(state.counters),
            {key: dict(p.cells) for key, p in state.periods.items()},
            dict(state.histograms),
            dict(state.gauges),
        )
    return found


def run_through(
    h: Harness, messages: list[tuple[str, RawMessage]], rng: random.Random | None
) -> None:
    """Batches of a few messages; with *rng*, writes are cut short at random and the worker
    restarts, getting everything since its last complete write again."""
    done = 0
    while done < len(messages):
        size = rng.randint(1, 6) if rng else 4
        batch = messages[done : done + size]
        for topic in (DEALS, TASKS, CALLS):
            part = [message for t, message in batch if t == topic]
            if part:
                h.processor.process(topic, part)
        if rng is not None and rng.random() < 0.3:
            h.store.rest()  # managers no batch touched since the last call are compressed
        steps = rng.choice([1, 2, 3, 3, 3]) if rng else 3
        h.persist(steps=steps)
        if steps < 3:
            h.restart()
            continue  # the same batch again: nothing of it is in a complete write
        done += size


@pytest.mark.parametrize("seed", range(12))
def test_writes_cut_short_anywhere_give_the_numbers_of_an_uninterrupted_run(seed: int) -> None:
    events = story(random.Random(seed))
    publisher = Harness()  # numbers the messages per topic, as the broker would
    messages = [(topic, publisher.message(topic, event)) for topic, event in events]
    clean, hurt = Harness(), Harness()
    run_through(clean, messages, None)
    run_through(hurt, messages, random.Random(seed + 1000))
    hurt.restart()
    assert numbers(hurt) == numbers(clean)
    # ... and the restored items are those of the uninterrupted run, ids included.
    for state in clean.store.managers_in():
        other = hurt.manager(state.manager_id)
        for kind in (b"d", b"t", b"c"):
            mine, theirs = state.items_of(kind), other.items_of(kind)
            assert sorted(map(str, mine.names())) == sorted(map(str, theirs.names()))
            for name in mine.names():
                assert mine.peek(name) == theirs.peek(name)


def test_a_write_cut_after_the_cores_restores_the_items_from_them() -> None:
    h = Harness()
    at = NOW - timedelta(hours=1)
    h.send(deal_created("m-a", "D1", at))
    h.processor.process(DEALS, [h.message(DEALS, stage_changed("m-a", "D1", "proposal", at))])
    h.persist(steps=1)  # the core reached the broker, the deal's own record did not
    h.restart()
    deal = h.manager("m-a").deals.peek("D1")
    assert deal is not None
    assert deal.stage == "proposal"
    assert h.manager("m-a").gauges == {
        ("open_deals", "default", "proposal"): 1.0,
        ("open_deals_amount", "default", "proposal"): 100.0,
        ("open_deal_age", "default", "proposal", "0"): 1.0,
    }
    # The deal taken from the core is written with the next write, on its own too.
    h.persist()
    own = [value for _, key, value in h.changelog if key == item_key(b"d", 0, "m-a", "D1")]
    assert own
    assert b'"proposal"' in (own[-1] or b"")


def test_items_rest_as_bytes_after_each_batch_and_decode_when_used() -> None:
    h = Harness()
    at = NOW - timedelta(hours=1)
    h.send(deal_created("m-a", "D1", at), deal_created("m-a", "D2", at))
    deals = h.manager("m-a").deals
    assert deals.raw("D1") is not None
    assert deals.raw("D2") is not None
    assert deals.get("D2") is not None
    assert deals.raw("D2") is None  # in use: decoded
    h.processor.process(DEALS, [h.message(DEALS, stage_changed("m-a", "D2", "qualified", at))])
    assert deals.raw("D2") is not None  # changed, not yet written, but bytes after its batch
    peeked = deals.peek("D2")
    assert peeked is not None
    assert peeked.stage == "qualified"
    write = h.persist()  # still carried by the next write, with that write's number
    [record] = [value for _, key, value in write.items if key == item_key(b"d", 0, "m-a", "D2")]
    assert record is not None
    assert b'"qualified"' in record
    # In memory it rests as the same body, stamped with the write begun before its batch:
    # no older than any record it came from, and no newer than the write that carries it.
    resting = deals.raw("D2") or b""
    assert body_of(resting) == body_of(record)
    assert seq_of(resting) == seq_of(record) - 1


def test_forgotten_items_stay_forgotten_after_a_restart() -> None:
    h = Harness()
    long_ago = NOW - timedelta(days=20)
    h.send(deal_created("m-a", "D1", long_ago), stage_changed("m-a", "D1", "won", long_ago))
    h.send(deal_created("m-a", "D2", NOW - timedelta(minutes=5)))  # the horizon moves on
    assert "D1" not in h.manager("m-a").deals
    h.restart()
    assert "D1" not in h.manager("m-a").deals
    assert "D2" in h.manager("m-a").deals
    assert h.counter("m-a", "deals_closed_total") == 1


def test_a_changelog_of_format_1_is_read() -> None:
    """Deals and tasks inside the manager record, event ids in day buckets."""
    h = Harness()
    at = NOW - timedelta(hours=2)
    deal = DealState(
        pipeline="default", created=True, stage="proposal", reached=5, created_at=at.timestamp()
    )
    v1 = {
        "k": "m",
        "id": "m-a",
        "p": 0,
        "o": {DEALS: 3},
        "w": at.timestamp(),
        "W": {"deals": at.timestamp()},
        "c": [["deals_created_total", "default", "", "", 1.0]],
        "P": {},
        "s": [at.date().toordinal()],
        "d": {"D1": deal.to_list()[:15]},
        "t": {},
        "h": [],
        "n": None,
        "N": None,
        "l": {},
        "v": 1,
    }
    seen = {"k": "s", "i": {"call-1": 4 * 7 + 2}, "v": 1}
    h.changelog = [
        (0, manager_key(0, "m-a"), orjson.dumps(v1)),
        (0, b"s\x1f0\x1fm-a\x1f%d" % at.date().toordinal(), orjson.dumps(seen)),
    ]
    h.restart()
    state = h.manager("m-a")
    assert isinstance(state, ManagerState)
    restored = state.deals.peek("D1")
    assert restored is not None
    assert restored.stage == "proposal"
    assert state.gauges == {
        ("open_deals", "default", "proposal"): 1.0,
        ("open_deals_amount", "default", "proposal"): 0.0,  # the deal has no amount
        ("open_deal_age", "default", "proposal", "0"): 1.0,
    }
    h.run(CALLS, [h.message(CALLS, call("m-a", "call-1", 60, at))])  # seen before the upgrade
    assert h.counter("m-a", "events_total", CALLS, "call.ended", "duplicate") == 1


def test_items_map_marks_what_changes() -> None:
    items: Items[DealState] = item_map(b"d", DealState.from_list, 0, "m-a")
    items.put("D1", DealState(pipeline="default"))
    changed, deleted = items.take_changes()
    assert list(changed) == ["D1"]
    assert not deleted
    items.peek("D1")
    assert items.take_changes() == ({}, set())
    items.get("D1")
    assert list(items.take_changes()[0]) == ["D1"]
    items.delete("D1")
    assert items.take_changes() == ({}, {"D1"})


def test_a_scrape_after_a_restart_reads_without_resolving_or_scheduling_a_write() -> None:
    """A restored core whose items need writing again (a write was cut after the cores)
    is left to the processor: a scrape reads it but changes nothing, writes nothing."""
    h = Harness()
    at = NOW - timedelta(hours=1)
    h.send(deal_created("m-a", "D1", at))
    h.processor.process(DEALS, [h.message(DEALS, stage_changed("m-a", "D1", "proposal", at))])
    h.persist(steps=1)  # the core reached the broker, the deal's own record did not
    expected = StateExposition(h.settings).text(h.store.records(), NOW)
    h.restart()
    for _ in range(2):
        assert StateExposition(h.settings).text(h.store.records(), NOW) == expected
        assert h.store.pending() == 0  # nothing to write because of a scrape
    h.processor.tick({0}, at.timestamp())  # the processor resolves it, adopting the deal
    assert h.store.pending() > 0
    assert StateExposition(h.settings).text(h.store.records(), NOW) == expected
