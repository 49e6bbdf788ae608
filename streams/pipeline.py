"""One batch of a source topic from consumed messages to state.

Each batch is checked against the state's progress first: messages already
applied are dropped, and offsets the consumer never handed over are read back
from the broker and applied in their place (streams.progress,
streams.gaps). Then the batch is applied, its dead letters are published and
acknowledged, and the progress moves on. Batches of one topic never overlap,
whether they come from the agent or from the tail check of the deadline
timer.

Touched records reach the changelog at most every *write_interval* seconds
(and on rebalance and shutdown, see streams.app), not after every batch: a
manager busy in five batches a second is written once. Faust may commit a
batch's offsets before its state is written; after a crash the restored
progress is then behind the committed offsets, and the gap between them is
read back like any other. That is what makes the interval safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from streams.changelog import ChangelogWriter
from streams.outputs import Send, publish_outputs
from streams.processor import Output, Processor, RawMessage, Reroute
from streams.progress import Gap, ProgressBook, last_offsets

log = logging.getLogger(__name__)

REROUTE_LOG_SECONDS = 60.0


class Reader(Protocol):
    def read(self, gap: Gap) -> Awaitable[tuple[list[RawMessage], int]]: ...


class BatchPipeline:
    def __init__(
        self,
        processor: Processor,
        changelog: ChangelogWriter,
        reader: Reader,
        send: Send,
        *,
        topics: Sequence[str],
        dead_letter_topic: str,
        owned: Callable[[int], bool] = lambda partition: True,
        write_interval: float = 0.0,
    ):
        self.processor = processor
        self.progress = ProgressBook(changelog.store)
        self._changelog = changelog
        self._reader = reader
        self._send = send
        self._dead_letter_topic = dead_letter_topic
        self._owned = owned
        self._write_interval = write_interval
        self._locks = {topic: asyncio.Lock() for topic in topics}
        # Messages the consumer skipped and the worker read back itself, per topic.
        self.read_back: Counter[str] = Counter()
        self.gaps_found: Counter[str] = Counter()
        self._rerouted_unlogged: Counter[str] = Counter()
        self._rerouted_logged_at: dict[str, float] = {}

    async def absorb(
        self, topic: str, messages: Sequence[RawMessage], ends: Mapping[int, int] | None = None
    ) -> None:
        """Apply *messages* of *topic*, and every unseen offset before them (or *ends*)."""
        async with self._locks[topic]:
            batch = self.progress.unseen(topic, messages)
            covered = last_offsets(batch)
            gaps = self.progress.gaps(topic, batch, ends)
            if gaps:
                batch, found = await self._fill(gaps, batch, covered)
                if ends and not all(self._owned(gap.partition) for gap in gaps):
                    return  # given away while reading: the new owner reads it
                self._note_read_back(found)
            outputs = self.processor.process(topic, batch)
            if outputs:
                await publish_outputs(self._send, self._dead_letter_topic, outputs)
                self.processor.record_outputs(outputs)
                self._note_reroutes(topic, outputs)
            self.progress.advance(topic, covered)
        if self._write_interval == 0:  # otherwise the changelog timer writes (streams.app)
            await self._changelog.write()

    async def flush(self) -> None:
        """Write whatever batches touched since the last write."""
        if self._changelog.store.pending():
            await self._changelog.write()

    async def _fill(
        self,
        gaps: Sequence[Gap],
        batch: list[RawMessage],
        covered: dict[int, int],
    ) -> tuple[list[RawMessage], list[tuple[Gap, int]]]:
        """*batch* with the messages of *gaps* read back, in order; and per gap how many."""
        found: list[RawMessage] = []
        counts: list[tuple[Gap, int]] = []
        for gap in gaps:
            messages, reached = await self._reader.read(gap)
            found.extend(messages)
            counts.append((gap, len(messages)))
            covered[gap.partition] = max(covered.get(gap.partition, -1), reached - 1)
        ordered = sorted([*batch, *found], key=lambda message: (message.partition, message.offset))
        return ordered, counts

    def _note_reroutes(self, topic: str, outputs: Sequence[Output]) -> None:
        """Warn about rerouted messages at most once a minute per topic: each batch of a
        misplacing sender has some, and the counter says how many."""
        rerouted = [output for output in outputs if isinstance(output, Reroute)]
        if not rerouted:
            return
        self._rerouted_unlogged[topic] += len(rerouted)
        now = time.monotonic()
        if now - self._rerouted_logged_at.get(topic, float("-inf")) < REROUTE_LOG_SECONDS:
            return
        self._rerouted_logged_at[topic] = now
        first = rerouted[0].message
        log.warning(
            "%d messages of %s arrived on another partition than their key maps to under "
            "murmur2 (e.g. key %r on partition %d, not %d) and were rerouted there; the "
            "sender's Kafka client uses another partitioner (librdkafka: set "
            "partitioner=murmur2_random)",
            self._rerouted_unlogged.pop(topic),
            topic,
            (first.key or b"")[:64].decode("utf-8", "replace"),
            first.partition,
            rerouted[0].to_partition,
        )

    def _note_read_back(self, counts: Sequence[tuple[Gap, int]]) -> None:
        """Count and log read-backs once they are applied (not when given away meanwhile)."""
        for gap, count in counts:
            self.gaps_found[gap.topic] += 1
            self.read_back[gap.topic] += count
            if count:
                log.warning(
                    "%s were never handed over by the consumer; read back %d messages "
                    "from the broker and applied them in order",
                    gap,
                    count,
                )
            else:
                log.debug("%s: no messages (transaction markers or deleted)", gap)
