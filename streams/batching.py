"""Whole fetched batches through Faust, one message per partition and fetch.

Faust hands every consumed record to its agents on its own: a message object,
two asyncio tasks (``Service.wait_first``), a channel queue, the stream's
iteration and an acknowledgement per record. That is about 75 µs of one core
per event, the ceiling of any per-event Faust agent (about 12,000 events/s
on the benchmark machine), far below what one process can fetch and decode
(over 400,000 events/s).

For the topics named here, this consumer passes each partition's fetched
records on as one :class:`BatchMessage` instead: offset = the last record's,
``records`` = all of them. Everything else of Faust stays as it is and works
per batch: flow control, the agent's stream, acknowledgements and commits
(acknowledging a batch acknowledges each of its offsets), rebalancing, table
recovery and standby replicas (streams.tablestore applies changelog batches).
Other topics are passed on record by record, as Faust does.

Faust has no public hook for any of this: every private part of Faust and
aiokafka used here is reached through streams.faust_compat, and the private
methods overridden here are listed there.

One thing is deliberately different: records fetched for a partition that
is paused meanwhile, or when a rebalance begins, are fetched again. Faust
drops them, and where the partition stays with the worker nothing reads
them again, so they would be skipped for good.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams import faust_compat


class BatchMessage(ConsumerMessage):
    """The records of one partition from one fetch, in offset order.

    ``offset`` is the last record's, so Faust's bookkeeping of read offsets,
    lag and commits sees the batch where it ends; ``first_offset`` is where it
    starts. ``records`` are aiokafka ``ConsumerRecord`` objects.
    """

    first_offset: int
    records: list[Any]

    @classmethod
    def of(cls, tp: TP, records: list[Any], generation_id: int) -> BatchMessage:
        last = records[-1]
        message = cls(
            tp.topic,
            tp.partition,
            last.offset,
            last.timestamp / 1000.0 if last.timestamp is not None else 0.0,
            last.timestamp_type,
            None,
            None,
            None,
            None,
            None,
            None,
            tp,
            generation_id=generation_id,
        )
        message.first_offset = records[0].offset
        message.records = records
        return message

    def __len__(self) -> int:
        return len(self.records)


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, passing on whole batches of :attr:`batched_topics`."""

    #: Shared with :class:`BatchingApp`, which may add to it until the consumer starts.
    batched_topics: set[str] = set()  # noqa: RUF012 (replaced per instance)
    #: aiokafka's ``fetch_max_wait_ms``; Faust fixes it at 1500.
    fetch_max_wait_ms: int = 1500

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(
        self,
        timeout: float,  # noqa: ASYNC109 (Faust's signature)
    ) -> AsyncIterator[tuple[TP, ConsumerMessage]]:
        records, active_partitions = await faust_compat.wait_next_records(self, timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # As Faust does: what was fetched while the flow stopped is read again
            # from the committed offsets once it resumes.
            try:
                await self.perform_seek()
            except Exception as exc:  # the assignment changes under it: seek after
                self.log.warning("seeking to committed offsets while stopped failed: %r", exc)
            return
        batched = self.batched_topics
        pending = [(tp, fetched) for tp, fetched in records.items() if fetched]
        while pending:
            tp, fetched = pending[0]
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                # A rebalance began: Faust drops the rest of what it fetched, and nothing
                # may fetch it again if the partition stays here. Fetch it again.
                await self._fetch_again(pending)
                break
            del pending[0]
            if not (
                active_partitions is None
                or tp in active_partitions
                or tp in faust_compat.buffered_partitions(self)
            ):
                # Paused meanwhile (its table is being recovered, say): likewise.
                await self._fetch_again([(tp, fetched)])
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in batched:
                message = BatchMessage.of(tp, fetched, generation_id)
                await self._cover(tp, message)
                yield tp, message
            else:
                for record in fetched:
                    yield tp, faust_compat.to_message(self, tp, record)

    async def _fetch_again(self, dropped: list[tuple[TP, list[Any]]]) -> None:
        """Seek partitions of batched topics back to records fetched but not passed on."""
        assigned = self.assignment()
        for tp, fetched in dropped:
            if tp.topic in self.batched_topics and tp in assigned:
                # Revoked meanwhile, it is left to its next owner, who reads it anyway.
                with contextlib.suppress(IllegalStateError):
                    await self.seek(tp, fetched[0].offset)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit: Faust's, but never held back for good by a hole.

        A hole before the first acknowledged offset is offsets Faust never saw
        acknowledged: a batch fetched before a rebalance and skipped after it
        (the rebalance forgets the batch's gap bookkeeping), or records fetched
        and never passed on. Faust would never commit again. For batched topics
        the state keeps its own progress and reads back whatever was committed
        without being applied (streams.progress), so committing past is safe.
        """
        acked = faust_compat.acked_offsets(self).get(tp)
        committed = faust_compat.committed_offsets(self).get(tp)
        if acked and committed is not None and tp.topic in self.batched_topics:
            first = min(acked)
            if first > committed + 1:
                gaps = faust_compat.offset_gaps(self)[tp]
                gaps.addi(committed + 1, first)
                gaps.merge_overlaps()  # no offset twice: Faust would stop at the repeat
        result: int | None = super()._new_offset(tp)
        return result

    async def _cover(self, tp: TP, message: BatchMessage) -> None:
        """Let acknowledging the batch acknowledge every offset up to its end.

        Faust acknowledges a message by appending its offset to the partition's
        acknowledged list (inlined in its compiled stream iterator, so this
        consumer cannot override it), and commits up to the first hole in that
        list. Offsets it knows hold nothing ("gaps") fill holes. So the batch's
        other offsets, and any offsets between the last one read and the batch
        (transaction markers, compacted records), are recorded as gaps, and the
        drain loop is told the batch follows the last offset read, so it adds no
        gap of its own (it would also add the batch's last offset, twice).
        """
        read_offsets = faust_compat.read_offsets(self)
        read = read_offsets[tp]
        start = message.first_offset if read is None else min(message.first_offset, read + 1)
        if start < message.offset:
            await faust_compat.add_gap(self, tp, start, message.offset - 1)
        read_offsets[tp] = message.offset


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read when the consumer starts and creates its fetcher, which is later.
        faust_compat.set_fetch_max_wait(
            consumer, cast(BatchingConsumer, self.consumer).fetch_max_wait_ms
        )
        return consumer


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """A Faust app whose consumer passes on whole batches of *batched_topics*."""

    def __init__(
        self,
        *args: Any,
        batched_topics: Iterable[str] = (),
        fetch_max_wait_ms: int = 1500,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.batched_topics: set[str] = set(batched_topics)
        self._batch_fetch_max_wait_ms = fetch_max_wait_ms

    def _new_transport(self) -> Any:
        return BatchingTransport(self.conf.broker_consumer, self)

    def _new_consumer(self) -> Any:
        consumer = cast(BatchingConsumer, super()._new_consumer())
        consumer.batched_topics = self.batched_topics
        consumer.fetch_max_wait_ms = self._batch_fetch_max_wait_ms
        return consumer
