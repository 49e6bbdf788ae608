"""A message on another partition than its key maps to is sent there, never applied where
it landed; sent once acknowledged and counted, never again after a restart."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from schemas.events import MAX_EVENT_BYTES
from schemas.partitioning import Placement, partition_for
from streams.changelog import ChangelogWriter
from streams.pipeline import BatchPipeline
from streams.processor import DeadLetter, Processor, RawMessage, Reroute
from tests.support.harness import DEALS, NOW, Harness, deal_created, stage_changed

PARTITIONS = 4


def placed(h: Harness) -> Harness:
    """*h* with a processor that checks placement, as a worker's does."""
    h.processor = Processor(h.settings, h.store, lambda: NOW, placement=Placement(PARTITIONS))
    return h


def home_of(manager: str) -> int:
    return partition_for(manager.encode(), PARTITIONS)


def elsewhere(manager: str) -> int:
    return (home_of(manager) + 1) % PARTITIONS


def test_a_misplaced_message_is_rerouted_and_touches_no_state() -> None:
    h = placed(Harness())
    at = NOW - timedelta(minutes=5)
    wrong = elsewhere("m-a")
    message = h.message(DEALS, deal_created("m-a", "D1", at), partition=wrong)
    outputs = h.processor.process(DEALS, [message])

    assert outputs == [Reroute(DEALS, message, home_of("m-a"))]
    assert h.store.manager(wrong, "m-a") is None
    assert h.store.rejected(wrong, DEALS) is None  # nothing counted before the broker has it
    h.processor.record_outputs(outputs)
    counted = h.store.rejected(wrong, DEALS)
    assert counted is not None
    assert dict(counted.counters.items()) == {
        ("events_total", DEALS, "deal.created", "rerouted"): 1.0
    }


def test_a_reroute_counted_before_a_restart_is_not_sent_again() -> None:
    h = placed(Harness())
    at = NOW - timedelta(minutes=5)
    message = h.message(DEALS, deal_created("m-a", "D1", at), partition=elsewhere("m-a"))
    h.run(DEALS, [message])
    h.restart()
    placed(h)
    assert h.processor.process(DEALS, [message]) == []


def test_reroutes_and_dead_letters_share_one_order_of_offsets() -> None:
    """Counted in offset order, so a restart re-sends exactly what was not counted."""
    h = placed(Harness())
    at = NOW - timedelta(minutes=5)
    wrong = elsewhere("m-a")
    right_key = next(f"m-{n}" for n in range(100) if home_of(f"m-{n}") == wrong)
    misplaced = h.message(DEALS, deal_created("m-a", "D1", at), partition=wrong)
    broken = h.message(DEALS, b"{not json", partition=wrong)
    broken = RawMessage(broken.partition, broken.offset, right_key.encode(), broken.value)
    fine = h.message(DEALS, deal_created(right_key, "D2", at), partition=wrong)
    outputs = h.processor.process(DEALS, [misplaced, broken, fine])

    assert [type(output) for output in outputs] == [Reroute, DeadLetter]
    h.processor.record_outputs(outputs[:1])  # a crash before the dead letter was acknowledged
    h.persist()
    h.restart()
    placed(h)
    again = h.processor.process(DEALS, [misplaced, broken, fine])
    assert [type(output) for output in again] == [DeadLetter]
    state = h.store.manager(wrong, right_key)
    assert state is not None
    assert state.counters.get(("deals_created_total", "default", "", "")) == 1


def test_keyless_messages_are_judged_where_they_landed() -> None:
    h = placed(Harness())
    at = NOW - timedelta(minutes=5)
    event = deal_created("m-a", "D1", at)
    keyless = RawMessage(elsewhere("m-a"), 0, None, h.message(DEALS, event).value)
    outputs = h.processor.process(DEALS, [keyless])
    assert [type(output) for output in outputs] == [DeadLetter]
    assert isinstance(outputs[0], DeadLetter)
    assert outputs[0].rejection.reason == "key_mismatch"


def test_a_misplaced_message_too_large_for_any_partition_is_rejected_where_it_is() -> None:
    h = placed(Harness())
    giant = RawMessage(elsewhere("m-a"), 0, b"m-a", b"x" * (MAX_EVENT_BYTES + 1))
    outputs = h.processor.process(DEALS, [giant])
    assert len(outputs) == 1
    assert isinstance(outputs[0], DeadLetter)
    assert outputs[0].rejection.reason == "too_large"


class Broker:
    """Acknowledges at once; what is sent to a source topic arrives there as a new message."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, *args: Any) -> asyncio.Future[None]:
        self.sent.append(args)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class NoGaps:
    async def read(self, gap: Any) -> tuple[list[RawMessage], int]:
        raise AssertionError(f"nothing is missing, yet {gap} was read")


def test_the_copy_keeps_key_value_headers_and_time_and_its_numbers_come_out_exact() -> None:
    """Creation on the wrong partition, the win on the right one first: the copy of the
    creation arrives after the win and still gives the in-order numbers."""
    at = NOW - timedelta(minutes=5)
    created = deal_created("m-a", "D1", at)
    won = stage_changed("m-a", "D1", "won", at + timedelta(minutes=1), amount=500.0)
    expected = Harness()
    expected.send(created, won)

    h = placed(Harness())
    broker = Broker()
    pipeline = BatchPipeline(
        h.processor,
        ChangelogWriter(h.store, topic=lambda: "changelog", send=broker.send),
        NoGaps(),
        broker.send,
        topics=h.settings.source_topics,
        dead_letter_topic=h.settings.topic_dead_letter,
    )
    home, wrong = home_of("m-a"), elsewhere("m-a")
    original = h.message(DEALS, created, partition=wrong)
    original = RawMessage(
        original.partition,
        original.offset,
        original.key,
        original.value,
        (("traceparent", b"00-abc-01"),),
        1_700_000_000.5,
    )
    asyncio.run(pipeline.absorb(DEALS, [h.message(DEALS, won, partition=home)]))
    asyncio.run(pipeline.absorb(DEALS, [original]))

    copies = [args for args in broker.sent if args[0] == DEALS]
    assert copies == [
        (
            DEALS,
            original.key,
            original.value,
            home,
            1_700_000_000.5,
            [
                ("traceparent", b"00-abc-01"),
                ("rerouted.from_partition", str(wrong).encode()),
                ("rerouted.from_offset", str(original.offset).encode()),
            ],
        )
    ]
    _, key, value, partition, timestamp, headers = copies[0]
    asyncio.run(
        pipeline.absorb(
            DEALS,
            [RawMessage(partition, 1, key, value, tuple(headers), timestamp)],
        )
    )
    assert h.store.manager(wrong, "m-a") is None
    state = h.store.manager(home, "m-a")
    assert state is not None
    assert dict(state.counters.items()) == {
        cell: value
        for cell, value in expected.manager("m-a").counters.items()
        if cell[0] != "events_total"
    } | {
        ("events_total", DEALS, "deal.created", "processed"): 1.0,
        ("events_total", DEALS, "deal.stage_changed", "processed"): 1.0,
    }
    assert pipeline.progress.applied(DEALS, wrong) == original.offset
