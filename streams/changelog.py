"""Writing a batch's state to the changelog so that a restart reads all of it.

Two rules make the changelog trustworthy on any Kafka-compatible broker:

1. Every touched record is sent and acknowledged before the batch's source
   offsets are acknowledged, so Faust never commits offsets ahead of state.
2. After each write, every partition written to gets one more record, alone
   in its batch, sent once everything else is acknowledged: the partition's
   source progress (streams.state.SourceProgress), or a tombstone marker
   before it has any. Faust restores a table by reading up to the
   partition's reported end offset; some brokers (the embedded tansu among
   them) report the end of a multi-record batch as its first offset + 1,
   which silently drops the rest of the batch on recovery. A single-record
   batch at the end makes the reported end exact. Writes are serialised so
   no other record can share that batch.

Because progress goes last, a restored progress never claims more than the
restored records hold. A crash before it loses at most state whose source
offsets were never acknowledged: those messages are delivered again (or read
back, see streams.gaps), and the offsets kept in each record decide what
still needs applying.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from streams.state import encode, is_progress_key, marker_key, progress_key
from streams.store import StateStore

Send = Callable[..., Awaitable[Awaitable[Any]]]


class ChangelogWriter:
    def __init__(self, store: StateStore, topic: Callable[[], str], send: Send):
        self._store = store
        self._topic = topic
        self._send = send
        self._lock = asyncio.Lock()
        self.records_written = 0
        self.writes = 0
        self._last_write = time.monotonic()

    def due(self, interval: float) -> bool:
        """Whether *interval* seconds have passed since the last write began."""
        return time.monotonic() - self._last_write >= interval

    async def write(self) -> int:
        """Persist everything touched so far; returns how many records were written."""
        async with self._lock:
            self._last_write = time.monotonic()
            writes = self._store.drain()
            if not writes:
                return 0
            # Taken now, not after the sends: by then other batches may have moved it.
            closing = self._closing(writes)
            try:
                await self._send_all(writes, closing)
            except BaseException:
                # Cancelled by a shutdown, or the broker failed: the next write (the
                # shutdown's own, or a retry) must still carry these records.
                self._store.requeue(writes)
                raise
            self.records_written += len(writes)
            self.writes += 1
            return len(writes)

    async def _send_all(
        self,
        writes: list[tuple[int, bytes, bytes | None]],
        closing: list[tuple[int, bytes, bytes | None]],
    ) -> None:
        topic = self._topic()
        sent = [
            await self._send(topic, key, value, partition, None, None)
            for partition, key, value in writes
            if not is_progress_key(key)
        ]
        await asyncio.gather(*sent)
        last = [
            await self._send(topic, key, value, partition, None, None)
            for partition, key, value in closing
        ]
        await asyncio.gather(*last)

    def _closing(
        self, writes: list[tuple[int, bytes, bytes | None]]
    ) -> list[tuple[int, bytes, bytes | None]]:
        """Each written partition's closing record: its progress, or a tombstone marker."""
        drained = {key: value for _, key, value in writes if is_progress_key(key)}
        closing: list[tuple[int, bytes, bytes | None]] = []
        for partition in sorted({partition for partition, _, _ in writes}):
            key = progress_key(partition)
            if key in drained:
                closing.append((partition, key, drained[key]))
                continue
            progress = self._store.get(key)
            if progress is None:
                closing.append((partition, marker_key(partition), None))
            else:
                closing.append((partition, key, encode(progress)))
        return closing
