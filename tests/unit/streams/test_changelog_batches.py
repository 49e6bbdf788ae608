"""The changelog's records go out as produce batches built directly, in order."""

from __future__ import annotations

import asyncio
from typing import Any

from streams.changelog import ChangelogWriter
from streams.entities import CallIds
from streams.store import StateStore
from tests.support.harness import CALLS, NOW, Harness, call


class FakeBatch:
    """aiokafka's BatchBuilder as the writer uses it: full after *room* records."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, key: bytes, value: bytes | None, timestamp: float | None) -> Any:
        if len(self.records) >= self.room and self.records:
            return None
        self.records.append((key, value))
        return object()


class FakeProducer:
    def __init__(self, room: int) -> None:
        self.room = room
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.room)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch.records))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def test_records_go_out_in_batches_per_partition_in_order() -> None:
    h = Harness()
    for partition in (0, 1):
        h.processor.process(
            CALLS,
            [
                h.message(CALLS, call(f"m-{partition}-{n}", f"c{n}", 60, NOW), partition)
                for n in range(5)
            ],
        )
    producer = FakeProducer(room=3)

    async def no_single_sends(*args: Any) -> Any:
        raise AssertionError("records go out in batches")

    writer = ChangelogWriter(h.store, lambda: "changelog", no_single_sends, lambda: producer)
    written = asyncio.run(writer.write())
    batches = [records for _, _, records in producer.sent]
    assert all(len(records) <= 3 for records in batches)
    assert sum(len(records) for records in batches) == written
    # The progress (here: the end marker) of each partition comes last and alone.
    for partition in (0, 1):
        mine = [records for _, p, records in producer.sent if p == partition]
        assert len(mine[-1]) == 1
        assert mine[-1][0][0].startswith(b"x")
    # Restored from what was sent, in order, the store has every call.
    restored = StateStore()
    for _, partition, records in producer.sent:
        for key, value in records:
            restored.restore(partition, key, value)
    days = {
        state.manager_id: [day for day in state.calls.names()] for state in restored.managers_in()
    }
    assert len(days) == 10
    first = restored.manager(0, "m-0-0")
    assert first is not None
    assert all(isinstance(first.calls.peek(day), CallIds) for day in days["m-0-0"])
