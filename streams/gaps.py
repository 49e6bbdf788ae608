"""Reading back source messages the consumer skipped, straight from the broker.

Used only when a batch shows a gap against the state's progress
(streams.progress), which should be rare; a short-lived consumer outside the
group reads exactly the missing offsets, so the group's assignment and
committed offsets are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from salespulse.kafka_security import client_options
from salespulse.settings import Settings
from salespulse.topics import bootstrap_servers
from streams.processor import RawMessage, raw_message
from streams.progress import Gap

log = logging.getLogger(__name__)


class GapReader:
    def __init__(self, settings: Settings, *, retry_seconds: float = 1.0):
        assert settings.broker, "the broker is resolved before the worker starts"
        self._settings = settings
        self._broker = settings.broker
        self._retry_seconds = retry_seconds

    async def read(self, gap: Gap) -> tuple[list[RawMessage], int]:
        """The messages of *gap*, and the offset reading got to (*gap.end* unless the
        partition ends before it).

        Offsets the broker no longer has (retention) or never gave a message to
        (transaction markers) are passed over.

        Retries for as long as the broker fails: the batch after the gap must
        not be applied before it, and waiting is the right back-pressure.
        """
        while True:
            try:
                return await self._read_once(gap)
            except (KafkaError, OSError) as exc:
                log.warning("reading back %s failed (%s); retrying", gap, exc)
                await asyncio.sleep(self._retry_seconds)

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(self._broker),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # offsets already deleted by retention
            **client_options(self._settings),
        )

    async def _read_once(self, gap: Gap) -> tuple[list[RawMessage], int]:
        consumer = self._consumer()
        await consumer.start()
        try:
            tp = TopicPartition(gap.topic, gap.partition)
            consumer.assign([tp])
            consumer.seek(tp, gap.start)
            found: list[RawMessage] = []
            stalled_since = time.monotonic()
            position = gap.start
            while position < gap.end:
                batches = await consumer.getmany(tp, timeout_ms=500)
                for record in batches.get(tp, []):
                    if gap.start <= record.offset < gap.end:
                        found.append(raw_message(record))
                moved = await consumer.position(tp)
                if moved > position:
                    position, stalled_since = moved, time.monotonic()
                elif time.monotonic() - stalled_since > 30.0:
                    # The partition ends before the gap does: nothing more to read.
                    log.warning("%s: the broker has nothing past offset %d", gap, position)
                    break
            return found, min(position, gap.end)
        finally:
            await consumer.stop()
