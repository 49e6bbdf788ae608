"""Whole batches through Faust's consumer: acknowledging a batch commits all of it.

The consumer is Faust's own, not started: records are handed to its
``_cover`` as the fetch loop does, acknowledged the way Faust's compiled
stream iterator does it (the batch's last offset appended to the
partition's acknowledged list), and the offset Faust would commit is asked
from Faust's own ``_new_offset``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka.errors import IllegalStateError
from faust.types import TP

from streams.batching import BatchingApp, BatchMessage
from streams.state import SourceProgress, encode, progress_key
from streams.tablestore import BatchStore

TOPIC = "crm.calls"
TP0 = TP(TOPIC, 0)


@dataclass
class Record:
    """The fields of aiokafka's ConsumerRecord that a batch reads."""

    offset: int
    key: bytes | None = b"m-01"
    value: bytes | None = b"{}"
    partition: int = 0
    timestamp: int | None = 1_700_000_000_000
    timestamp_type: int = 0


@pytest.fixture
def consumer() -> Any:
    app = BatchingApp("test-batching", broker="kafka://127.0.0.1:1", batched_topics=[TOPIC])
    return app.consumer


def batch(*offsets: int) -> BatchMessage:
    return BatchMessage.of(TP0, [Record(offset) for offset in offsets], generation_id=1)


async def deliver(consumer: Any, message: BatchMessage) -> None:
    """What the fetch loop does with a batch, then Faust's acknowledgement of it."""
    await consumer._cover(TP0, message)
    consumer._acked[TP0].append(message.offset)


def test_a_batch_is_one_message_ending_at_its_last_offset() -> None:
    message = batch(7, 8, 9)
    assert (message.first_offset, message.offset, len(message)) == (7, 9, 3)
    assert [record.offset for record in message.records] == [7, 8, 9]
    assert message.tp == TP0
    assert message.timestamp == 1_700_000_000.0


async def test_acknowledged_batches_commit_up_to_their_end(consumer: Any) -> None:
    await deliver(consumer, batch(*range(0, 10)))
    assert consumer._new_offset(TP0) == 10
    consumer._committed_offset[TP0] = 10
    await deliver(consumer, batch(*range(10, 25)))
    await deliver(consumer, batch(*range(25, 40)))
    assert consumer._new_offset(TP0) == 40


async def test_offsets_without_records_before_a_batch_do_not_hold_commits(consumer: Any) -> None:
    """Transaction markers or compacted records leave offsets no record has."""
    await deliver(consumer, batch(*range(0, 5)))
    consumer._committed_offset[TP0] = consumer._new_offset(TP0)
    await deliver(consumer, batch(8, 9, 11))
    assert consumer._new_offset(TP0) == 12


async def test_a_single_record_at_offset_zero_does_not_hold_later_commits(consumer: Any) -> None:
    """Faust's own gap check skips a read offset of 0; the batch cover does not."""
    await deliver(consumer, batch(0))
    consumer._committed_offset[TP0] = consumer._new_offset(TP0)
    await deliver(consumer, batch(1, 2, 3))
    assert consumer._new_offset(TP0) == 4


async def test_after_a_seek_to_the_committed_offset_a_batch_commits_whole(consumer: Any) -> None:
    """After a restart Faust sets the read offset to the committed one (the next to read)."""
    consumer._committed_offset[TP0] = 100
    consumer._read_offset[TP0] = 100
    await deliver(consumer, batch(*range(100, 130)))
    assert consumer._new_offset(TP0) == 130


async def test_an_unacknowledged_batch_holds_the_commit_before_it(consumer: Any) -> None:
    await deliver(consumer, batch(*range(0, 10)))
    await consumer._cover(TP0, batch(*range(10, 20)))  # fetched, still being processed
    assert consumer._new_offset(TP0) == 10
    consumer._committed_offset[TP0] = 10
    consumer._acked[TP0].append(19)
    assert consumer._new_offset(TP0) == 20


def test_the_batching_consumer_waits_for_fetches_as_configured() -> None:
    app = BatchingApp(
        "test-fetch-wait", broker="kafka://127.0.0.1:1", batched_topics=[], fetch_max_wait_ms=40
    )
    consumer: Any = app.consumer
    assert consumer.fetch_max_wait_ms == 40


@dataclass
class ChangelogEvent:
    message: Any


def table_store() -> Any:
    app = BatchingApp("test-store", broker="kafka://127.0.0.1:1")
    table = app.Table("state", key_type=bytes, value_type=bytes, store="salespulse://state")
    store = table.data
    assert isinstance(store, BatchStore)
    return store


def progress(partition: int, offset: int) -> Record:
    """A changelog record of a partition's source progress."""
    value = encode(SourceProgress(partition, {TOPIC: offset}))
    return Record(offset, key=progress_key(partition), value=value, partition=partition)


def apply(store: Any, partition: int, records: list[Record]) -> None:
    changelog = BatchMessage.of(TP("app-state-changelog", partition), records, generation_id=1)
    store.apply_changelog_batch([ChangelogEvent(changelog)], lambda k: k, lambda v: v)


def applied(store: Any, partition: int) -> int | None:
    found = store.state_store.progress(partition)
    return None if found is None else found.offsets[TOPIC]


def test_the_table_store_applies_a_changelog_batch_whole() -> None:
    store = table_store()
    apply(store, 0, [progress(0, 3), progress(0, 7), progress(0, 9)])
    assert applied(store, 0) == 9


async def test_a_recovered_active_partition_ignores_its_own_changelog() -> None:
    """Its memory is newer than anything the changelog holds; a standby keeps following."""
    store = table_store()
    await store.on_recovery_completed(
        {TP("app-state-changelog", 0)}, {TP("app-state-changelog", 1)}
    )
    store.state_store.set_progress(SourceProgress(0, {TOPIC: 50}))  # the live state
    apply(store, 0, [progress(0, 5)])
    apply(store, 1, [progress(1, 3)])
    assert (applied(store, 0), applied(store, 1)) == (50, 3)
    await store.on_rebalance(set(), set(), set())
    apply(store, 0, [progress(0, 60)])
    assert applied(store, 0) == 60  # being recovered again: restored


async def test_partitions_no_longer_served_are_forgotten() -> None:
    store = table_store()
    apply(store, 0, [progress(0, 5)])
    apply(store, 2, [progress(2, 8)])
    await store.on_recovery_completed({TP("app-state-changelog", 2)}, set())
    assert store.state_store.partitions() == {2}


async def fetched(consumer: Any, records: list[Record], active: set[TP]) -> list[Any]:
    """Run one round of the consumer's fetch with *records* of TP0 come back."""

    async def wait_next_records(wait: float) -> tuple[dict[TP, list[Record]], set[TP]]:
        return {TP0: records}, active

    consumer._wait_next_records = wait_next_records
    consumer.highwater = lambda tp: 1000
    return [message async for _, message in consumer.getmany(timeout=1.0)]


async def test_a_fetched_batch_is_passed_on_whole(consumer: Any) -> None:
    messages = await fetched(consumer, [Record(5), Record(6)], active={TP0})
    assert len(messages) == 1
    assert isinstance(messages[0], BatchMessage)
    assert (messages[0].first_offset, messages[0].offset) == (5, 6)


async def test_records_of_a_paused_partition_are_fetched_again(consumer: Any) -> None:
    """Faust drops them and later commits past them; this consumer seeks back instead."""
    seeks: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        seeks.append((tp, offset))

    consumer.seek = seek
    consumer.assignment = lambda: {TP0}
    messages = await fetched(consumer, [Record(5), Record(6)], active=set())
    assert messages == []
    assert seeks == [(TP0, 5)]


async def test_records_fetched_when_a_rebalance_begins_are_fetched_again(consumer: Any) -> None:
    tp1 = TP(TOPIC, 1)
    seeks: list[tuple[TP, int]] = []

    async def seek(tp: TP, offset: int) -> None:
        seeks.append((tp, offset))

    async def wait_next_records(wait: float) -> tuple[dict[TP, list[Record]], set[TP]]:
        return {TP0: [Record(5)], tp1: [Record(8, partition=1), Record(9, partition=1)]}, {
            TP0,
            tp1,
        }

    consumer.seek = seek
    consumer.assignment = lambda: {TP0, tp1}
    consumer._wait_next_records = wait_next_records
    consumer.highwater = lambda tp: 1000
    passed_on = []
    async for _, message in consumer.getmany(timeout=1.0):
        passed_on.append(message)
        consumer.app.consumer_generation_id += 1  # the group rebalances meanwhile
    assert [(m.tp, m.offset) for m in passed_on] == [(TP0, 5)]
    assert seeks == [(tp1, 8)]


async def test_a_partition_revoked_before_it_is_fetched_again_is_left_alone(consumer: Any) -> None:
    async def seek(tp: TP, offset: int) -> None:
        raise IllegalStateError(f"No current assignment for partition {tp}")

    consumer.seek = seek
    consumer.assignment = lambda: {TP0}
    assert await fetched(consumer, [Record(5)], active=set()) == []


async def test_a_batch_whose_gap_a_rebalance_forgot_does_not_hold_commits(consumer: Any) -> None:
    """Fetched before a rebalance, skipped and acknowledged after it: Faust's revocation
    dropped the gaps that covered the batch's other offsets."""
    consumer._committed_offset[TP0] = 40
    consumer._read_offset[TP0] = 40
    await deliver(consumer, batch(*range(40, 60)))
    consumer._gap.pop(TP0)  # what a revocation does
    assert consumer._new_offset(TP0) == 60
