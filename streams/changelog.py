"""Writing state to the changelog so that a restart reads all of it back, consistent.

A write sends what the store took (streams.store) in steps, each
acknowledged by the broker before the next begins:

1. touched managers' cores, each embedding the items that changed with it,
   and rejection records;
2. those items' own records;
   (1 and 2 again for the next part of the touched managers, if many)
3. per partition, its source progress as it was when the write began
   (streams.state.SourceProgress), or a tombstone marker before it has any,
   alone in its produce batch.

So a crash anywhere leaves cores that hold their items (restoring takes, per
item, the newer copy), and a progress that never claims more than the
restored records hold. Messages past the restored progress are delivered
again (or read back, see streams.gaps), and the offsets each core keeps
decide what still needs applying.

Faust restores a table by reading up to the partition's reported end
offset; some brokers (the embedded tansu among them) report the end of a
multi-record batch as its first offset + 1, which silently drops the rest
of the batch on recovery. The single-record batch of step 3 makes the
reported end exact. Writes are serialised so no other record can share it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from streams.store import Send as Record
from streams.store import StateStore

Send = Callable[..., Awaitable[Awaitable[Any]]]

MANAGERS_PER_PART = 500


class BatchProducer(Protocol):
    """What aiokafka's producer offers to send records a produce batch at a time."""

    def create_batch(self) -> Any: ...

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[Any]: ...


class ChangelogWriter:
    """Sends a store's writes to the changelog topic.

    With *batches* (the producer under Faust's), each partition's records of a
    step go out as a few produce batches built directly, instead of one
    ``send`` per record: a large write is tens of thousands of records, and
    the per-record path cost more than encoding them.
    """

    def __init__(
        self,
        store: StateStore,
        topic: Callable[[], str],
        send: Send,
        batches: Callable[[], BatchProducer] | None = None,
    ):
        self.store = store
        self._topic = topic
        self._send = send
        self._batches = batches
        self._lock = asyncio.Lock()
        self.records_written = 0
        self.writes = 0
        self._last_write = time.monotonic()

    def due(self, interval: float) -> bool:
        """Whether *interval* seconds have passed since the last write began."""
        return time.monotonic() - self._last_write >= interval

    async def write(self) -> int:
        """Persist everything touched so far; returns how many records were written.

        Managers are encoded and sent MANAGERS_PER_PART at a time, so a write of a
        large company never holds all of its records at once, and batches run
        between the parts. Each partition's progress, as it was when the write
        began, goes last.
        """
        async with self._lock:
            self._last_write = time.monotonic()
            plan = self.store.begin()
            if not plan:
                return 0
            written = 0
            try:
                while (part := self.store.next_part(plan, MANAGERS_PER_PART)) is not None:
                    await self._send_all(part.cores)
                    await self._send_all(part.items)
                    self.store.written(part)
                    written += len(part)
                await self._send_all(plan.closing)
            except BaseException:
                # Cancelled by a shutdown, or the broker failed: the next write (the
                # shutdown's own, or a retry) must still carry these records.
                self.store.requeue(plan)
                raise
            written += len(plan.closing)
            self.records_written += written
            self.writes += 1
            return written

    async def _send_all(self, records: Sequence[Record]) -> None:
        """Send *records* (in order per partition) and wait until the broker has all."""
        if not records:
            return
        topic = self._topic()
        if self._batches is None:
            sent = [
                await self._send(topic, key, value, partition, None, None)
                for partition, key, value in records
            ]
        else:
            sent = await self._send_batches(self._batches(), topic, records)
        await asyncio.gather(*sent)

    @staticmethod
    async def _send_batches(
        producer: BatchProducer, topic: str, records: Sequence[Record]
    ) -> list[Awaitable[Any]]:
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for partition, key, value in records:
            by_partition.setdefault(partition, []).append((key, value))
        sent = []
        for partition, entries in by_partition.items():
            batch = producer.create_batch()
            for key, value in entries:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    # Full (a first record is always taken, however large).
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            sent.append(await producer.send_batch(batch, topic, partition=partition))
        return sent
