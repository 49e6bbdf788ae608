"""Batches against the state's progress: skipped offsets read back, applied ones dropped,
and the progress written last so a restored one never claims more than the records hold."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from streams import changelog as changelog_module
from streams.changelog import ChangelogWriter
from streams.pipeline import BatchPipeline
from streams.processor import RawMessage
from streams.progress import Gap, ProgressBook
from streams.state import SourceProgress, decode, progress_key
from tests.support.harness import CALLS, DEALS, NOW, Harness, call, deal_created, stage_changed


class BrokerLog:
    """What the broker holds per source partition, for reading gaps back."""

    def __init__(self, messages: Sequence[RawMessage], *, topic: str, end: int | None = None):
        self.topic = topic
        self.messages = list(messages)
        self.end = end
        self.reads: list[Gap] = []

    async def read(self, gap: Gap) -> tuple[list[RawMessage], int]:
        self.reads.append(gap)
        found = [
            m
            for m in self.messages
            if m.partition == gap.partition and gap.start <= m.offset < gap.end
        ]
        reached = gap.end if self.end is None else min(gap.end, self.end)
        return [m for m in found if m.offset < reached], reached


class Sends:
    """A producer that acknowledges at once and remembers what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []

    async def __call__(
        self, topic: str, key: bytes, value: bytes | None, partition: int, *rest: Any
    ) -> Awaitable[None]:
        self.sent.append((topic, key, value, partition))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def pipeline_for(
    h: Harness,
    reader: BrokerLog,
    sends: Sends | None = None,
    write_interval: float = 0.0,
) -> BatchPipeline:
    sends = sends or Sends()
    changelog = ChangelogWriter(h.store, topic=lambda: "changelog", send=sends)
    return BatchPipeline(
        h.processor,
        changelog,
        reader,
        sends,
        topics=h.settings.source_topics,
        dead_letter_topic=h.settings.topic_dead_letter,
        write_interval=write_interval,
    )


def deal_story(h: Harness) -> list[RawMessage]:
    at = NOW - timedelta(hours=1)
    events = []
    for n in range(4):
        events.append(deal_created("m-a", f"D{n}", at))
        events.append(stage_changed("m-a", f"D{n}", "qualified", at + timedelta(minutes=n)))
    return [h.message(DEALS, event) for event in events]


def in_order() -> tuple[list[RawMessage], Harness]:
    """The deal story, and a harness that was given all of it in order."""
    expected = Harness()
    messages = deal_story(expected)
    expected.run(DEALS, messages)
    return messages, expected


def test_offsets_the_consumer_skipped_are_read_back_and_applied_in_order() -> None:
    messages, expected = in_order()
    h = Harness()
    broker = BrokerLog(messages, topic=DEALS)
    pipeline = pipeline_for(h, broker)
    # The consumer hands over 0-1, then jumps to 5: 2, 3 and 4 were committed unseen.
    asyncio.run(pipeline.absorb(DEALS, messages[:2]))
    asyncio.run(pipeline.absorb(DEALS, messages[5:]))

    assert broker.reads == [Gap(DEALS, 0, 2, 5)]
    assert pipeline.read_back[DEALS] == 3
    assert h.manager("m-a").counters == expected.manager("m-a").counters
    assert pipeline.progress.applied(DEALS, 0) == len(messages) - 1


def test_a_gap_inside_one_batch_is_filled_too() -> None:
    messages, expected = in_order()
    h = Harness()
    broker = BrokerLog(messages, topic=DEALS)
    pipeline = pipeline_for(h, broker)
    asyncio.run(pipeline.absorb(DEALS, [*messages[:3], *messages[6:]]))

    assert broker.reads == [Gap(DEALS, 0, 3, 6)]
    assert h.manager("m-a").counters == expected.manager("m-a").counters


def test_a_new_partition_read_from_past_offset_zero_has_offset_zero_read_back() -> None:
    """A new consumer group starts at the broker's "earliest" offset. The embedded
    broker answers with the offset of the batch it stored first, which is 1 when two
    producers wrote a new partition at once and the later offset was stored first:
    offset 0 is never fetched, and is read back."""
    messages, expected = in_order()
    h = Harness()
    broker = BrokerLog(messages, topic=DEALS)
    pipeline = pipeline_for(h, broker)
    asyncio.run(pipeline.absorb(DEALS, messages[1:]))

    assert broker.reads == [Gap(DEALS, 0, 0, 1)]
    assert h.manager("m-a").counters == expected.manager("m-a").counters


def test_messages_already_applied_are_dropped_without_reading_anything() -> None:
    h = Harness()
    messages = deal_story(h)
    broker = BrokerLog(messages, topic=DEALS)
    pipeline = pipeline_for(h, broker)
    asyncio.run(pipeline.absorb(DEALS, messages))
    before = dict(h.manager("m-a").counters)
    asyncio.run(pipeline.absorb(DEALS, messages[3:]))  # delivered again
    assert h.manager("m-a").counters == before
    assert broker.reads == []


def test_a_skipped_tail_is_read_up_to_the_consumer_position() -> None:
    h = Harness()
    messages = [h.message(CALLS, call("m-a", f"c{n}", 60, NOW)) for n in range(6)]
    broker = BrokerLog(messages, topic=CALLS)
    pipeline = pipeline_for(h, broker)
    asyncio.run(pipeline.absorb(CALLS, messages[:2]))
    asyncio.run(pipeline.absorb(CALLS, [], ends={0: 6}))
    assert broker.reads == [Gap(CALLS, 0, 2, 6)]
    assert h.counter("m-a", "calls_total") == 6
    asyncio.run(pipeline.absorb(CALLS, [], ends={0: 6}))  # nothing left behind
    assert len(broker.reads) == 1


def test_offsets_without_messages_move_the_progress_only_as_far_as_the_broker_read() -> None:
    h = Harness()
    messages = [h.message(CALLS, call("m-a", f"c{n}", 60, NOW)) for n in range(3)]
    broker = BrokerLog(messages[:1], topic=CALLS, end=2)  # offsets 1 and 2 never came
    pipeline = pipeline_for(h, broker)
    asyncio.run(pipeline.absorb(CALLS, [], ends={0: 3}))
    assert pipeline.progress.applied(CALLS, 0) == 1
    assert h.counter("m-a", "calls_total") == 1


def test_progress_is_each_partitions_last_record_and_alone_after_the_rest() -> None:
    h = Harness()
    sends = Sends()
    at = NOW - timedelta(minutes=5)
    messages = [
        h.message(DEALS, deal_created("m-a", "D1", at), partition=0),
        h.message(DEALS, deal_created("m-b", "D2", at), partition=1),
    ]
    broker = BrokerLog(messages, topic=DEALS)
    asyncio.run(pipeline_for(h, broker, sends).absorb(DEALS, messages))

    changelog = [(key, value, partition) for topic, key, value, partition in sends.sent]
    for partition in (0, 1):
        mine = [(key, value) for key, value, p in changelog if p == partition]
        key, value = mine[-1]
        assert key == progress_key(partition)
        assert [k for k, _ in mine].count(key) == 1
        assert value is not None
        progress = decode(value)
        assert isinstance(progress, SourceProgress)
        assert progress.offsets == {DEALS: 0}
    # Every closing record follows every other record of the write.
    closing = [i for i, (key, _, _) in enumerate(changelog) if key.startswith(b"p")]
    assert min(closing) > max(i for i in range(len(changelog)) if i not in closing)


def test_progress_is_taken_when_the_write_begins_not_when_it_ends() -> None:
    """A batch applied while a write waits for its acknowledgements must not reach that
    write's progress: its records are only in the next write."""
    h = Harness()
    messages = [h.message(CALLS, call("m-a", f"c{n}", 60, NOW)) for n in range(4)]
    sent: list[tuple[bytes, bytes | None]] = []
    sending = asyncio.Event()
    release = asyncio.Event()

    async def slow_send(
        topic: str, key: bytes, value: bytes | None, partition: int, *rest: Any
    ) -> Awaitable[Any]:
        sent.append((key, value))
        sending.set()
        return asyncio.ensure_future(release.wait())

    async def scenario() -> None:
        changelog = ChangelogWriter(h.store, topic=lambda: "changelog", send=slow_send)
        pipeline = BatchPipeline(
            h.processor,
            changelog,
            BrokerLog(messages, topic=CALLS),
            slow_send,
            topics=h.settings.source_topics,
            dead_letter_topic=h.settings.topic_dead_letter,
        )
        first = asyncio.create_task(pipeline.absorb(CALLS, messages[:2]))
        await sending.wait()  # the write has drained and waits for its acknowledgements
        pipeline.processor.process(CALLS, messages[2:])
        pipeline.progress.advance(CALLS, {0: 3})
        release.set()
        await first

    asyncio.run(scenario())
    progress_values = [value for key, value in sent if key == progress_key(0)]
    assert progress_values, "the write closed without the partition's progress"
    first_progress = decode(progress_values[0] or b"")
    assert isinstance(first_progress, SourceProgress)
    assert first_progress.offsets == {CALLS: 1}


def restored(h: Harness, sends: Sends) -> Harness:
    """A new worker restoring the changelog *sends* wrote (bytes, decoded on first use)."""
    h.changelog = [
        (partition, key, value)
        for topic, key, value, partition in sends.sent
        if topic == "changelog"
    ]
    h.restart()
    return h


def test_batches_write_the_changelog_only_when_the_interval_is_due() -> None:
    messages, expected = in_order()
    h = Harness()
    sends = Sends()
    pipeline = pipeline_for(h, BrokerLog(messages, topic=DEALS), sends, write_interval=3600)
    asyncio.run(pipeline.absorb(DEALS, messages[:4]))
    asyncio.run(pipeline.absorb(DEALS, messages[4:]))
    assert sends.sent == []
    asyncio.run(pipeline.flush())
    assert {key for _, key, _, _ in sends.sent} >= {progress_key(0)}
    assert restored(h, sends).manager("m-a").counters == expected.manager("m-a").counters


def test_a_crash_before_the_write_loses_nothing_the_consumer_committed() -> None:
    """Faust may commit a batch whose state was never written; the restored progress is
    then behind the committed offsets and the gap is read back."""
    messages, expected = in_order()
    h = Harness()
    sends = Sends()
    broker = BrokerLog(messages, topic=DEALS)
    pipeline = pipeline_for(h, broker, sends, write_interval=3600)
    asyncio.run(pipeline.absorb(DEALS, messages[:3]))
    asyncio.run(pipeline.flush())
    asyncio.run(pipeline.absorb(DEALS, messages[3:6]))  # committed, never written: a crash

    after = restored(h, sends)
    assert after.manager("m-a").counters != expected.manager("m-a").counters
    pipeline = pipeline_for(after, broker)
    asyncio.run(pipeline.absorb(DEALS, messages[6:]))  # the consumer resumes at its commit
    assert broker.reads == [Gap(DEALS, 0, 3, 6)]
    assert after.manager("m-a").counters == expected.manager("m-a").counters


def test_a_write_cut_short_leaves_its_records_for_the_next_write() -> None:
    """A shutdown cancels a timer's write halfway; the shutdown's own write must still
    carry every record the cut one had taken, or the changelog loses them."""
    h = Harness()
    messages = [h.message(CALLS, call("m-a", f"c{n}", 60, NOW)) for n in range(3)]
    sends = Sends()
    failing = True

    async def send(topic: str, key: bytes, value: bytes | None, partition: int, *rest: Any) -> Any:
        if failing:
            raise asyncio.CancelledError
        return await sends(topic, key, value, partition)

    changelog = ChangelogWriter(h.store, topic=lambda: "changelog", send=send)
    h.processor.process(CALLS, messages)
    ProgressBook(h.store).advance(CALLS, {0: 2})
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(changelog.write())
    failing = False
    asyncio.run(changelog.write())
    assert restored(h, sends).counter("m-a", "calls_total") == 3
    assert ProgressBook(h.store).applied(CALLS, 0) == 2


def test_a_write_in_parts_cut_short_halfway_is_completed_by_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large write goes out a few managers at a time; cut after some parts are sent, the
    next write still carries the rest, and the progress only ever closes a whole write."""
    monkeypatch.setattr(changelog_module, "MANAGERS_PER_PART", 2)
    h = Harness()
    messages = [h.message(CALLS, call(f"m-{n}", f"c{n}", 60, NOW)) for n in range(7)]
    sends = Sends()
    budget = [5]  # sends until the broker goes away

    async def send(topic: str, key: bytes, value: bytes | None, partition: int, *rest: Any) -> Any:
        if budget[0] == 0:
            raise ConnectionError("broker gone")
        budget[0] -= 1
        return await sends(topic, key, value, partition)

    changelog = ChangelogWriter(h.store, topic=lambda: "changelog", send=send)
    h.processor.process(CALLS, messages)
    ProgressBook(h.store).advance(CALLS, {0: 6})
    with pytest.raises(ConnectionError):
        asyncio.run(changelog.write())
    assert progress_key(0) not in {key for _, key, _, _ in sends.sent}
    budget[0] = 10**6
    asyncio.run(changelog.write())
    after = restored(h, sends)
    assert [after.counter(f"m-{n}", "calls_total") for n in range(7)] == [1.0] * 7
    assert ProgressBook(after.store).applied(CALLS, 0) == 6
