"""How far each source partition has been applied, and what is missing from a batch.

The consumer's committed offsets say what Faust believes was processed; the
state's own progress says what was. They differ when the consumer commits an
offset it never handed to an agent (messages skipped around a rebalance, an
acknowledgement after a cancelled batch): those messages would never be
seen again. Comparing each batch with the progress finds them, so the
worker can read them back from the broker before going on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streams.processor import RawMessage
from streams.state import SourceProgress
from streams.store import StateStore


@dataclass(frozen=True, slots=True)
class Gap:
    """Offsets [start, end) of a source partition that no batch has brought."""

    topic: str
    partition: int
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] offsets {self.start}..{self.end - 1}"


class ProgressBook:
    def __init__(self, store: StateStore):
        self._store = store

    def applied(self, topic: str, partition: int) -> int:
        """The last offset of *topic*'s *partition* whose outcome is in the state, or -1."""
        progress = self._store.progress(partition)
        return -1 if progress is None else progress.offsets.get(topic, -1)

    def unseen(self, topic: str, messages: Sequence[RawMessage]) -> list[RawMessage]:
        """The messages whose outcome the state does not hold yet."""
        applied: dict[int, int] = {}
        kept = []
        for message in messages:
            partition = message.partition
            if partition not in applied:
                applied[partition] = self.applied(topic, partition)
            if message.offset > applied[partition]:
                kept.append(message)
        return kept

    def gaps(
        self, topic: str, messages: Sequence[RawMessage], ends: Mapping[int, int] | None = None
    ) -> list[Gap]:
        """Offsets between the progress and the batch (or *ends*, per partition) never seen.

        *messages* are unseen ones, in offset order per partition.
        """
        expected: dict[int, int] = {}
        found: list[Gap] = []
        for message in messages:
            partition = message.partition
            start = expected.get(partition)
            if start is None:
                start = self.applied(topic, partition) + 1
            if message.offset > start:
                found.append(Gap(topic, partition, start, message.offset))
            expected[partition] = message.offset + 1
        for partition, end in (ends or {}).items():
            start = expected.get(partition, self.applied(topic, partition) + 1)
            if end > start:
                found.append(Gap(topic, partition, start, end))
        return found

    def advance(self, topic: str, covered: Mapping[int, int]) -> None:
        """Record that every offset up to *covered* (per partition) has its outcome."""
        for partition, offset in covered.items():
            progress = self._store.progress(partition) or SourceProgress(partition=partition)
            if offset > progress.offsets.get(topic, -1):
                progress.offsets[topic] = offset
                self._store.set_progress(progress)


def last_offsets(messages: Sequence[RawMessage]) -> dict[int, int]:
    """The highest offset per partition of *messages*."""
    last: dict[int, int] = {}
    for message in messages:
        if message.offset > last.get(message.partition, -1):
            last[message.partition] = message.offset
    return last
