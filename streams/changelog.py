"""Writing a batch's state to the changelog so that a restart reads all of it.

Two rules make the changelog trustworthy on any Kafka-compatible broker:

1. Every touched record is sent and acknowledged before the batch's source
   offsets are acknowledged, so Faust never commits offsets ahead of state.
2. After each write, every partition written to gets a lone end marker (a
   tombstone) and the writer waits for it. Faust restores a table by reading
   up to the partition's reported end offset; some brokers (the embedded
   tansu among them) report the end of a multi-record batch as its first
   offset + 1, which silently drops the rest of the batch on recovery. A
   single-record batch at the end makes the reported end exact. Writes are
   serialised so no other record can share the marker's batch.

A crash between the records and the marker loses at most state whose source
offsets were never acknowledged: those messages are delivered again, and the
offsets kept in each record decide what still needs applying.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from streams.state import marker_key
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

    async def write(self) -> int:
        """Persist everything touched so far; returns how many records were written."""
        async with self._lock:
            writes = self._store.drain()
            if not writes:
                return 0
            topic = self._topic()
            sent = [
                await self._send(topic, key, value, partition, None, None)
                for partition, key, value in writes
            ]
            await asyncio.gather(*sent)
            partitions = sorted({partition for partition, _, _ in writes})
            markers = [
                await self._send(topic, marker_key(partition), None, partition, None, None)
                for partition in partitions
            ]
            await asyncio.gather(*markers)
            self.records_written += len(writes)
            self.writes += 1
            return len(writes)
