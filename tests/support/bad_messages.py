"""Publishing messages with their broker coordinates, and reading topics to their end.

The helpers in tests.support.kafka cannot say where a message landed and stop
at the default 1 MB request size; the bad-input tests need both: the offset of
every original to check the dead-letter origin headers, and multi-megabyte
records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from salespulse.settings import Settings
from salespulse.topics import ensure_topics
from tests.support.kafka import seek_to_start

# Large enough for the biggest record the tests send, with room for batch overhead.
MAX_BYTES = 8 * 1024 * 1024
SENTINEL = ("salespulse.test.sentinel", b"end")


@dataclass(frozen=True, slots=True)
class Sent:
    """One published message and where the broker put it."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int
    offset: int


def create_topics(broker_url: str) -> None:
    """The CRM and dead-letter topics, exactly as a worker would create them."""
    asyncio.run(ensure_topics(Settings(broker=broker_url)))


def publish_recorded(
    bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]]
) -> list[Sent]:
    """Send (topic, key, value) triples in order; returns each one's partition and offset."""
    batch = list(messages)

    async def run() -> list[Sent]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=MAX_BYTES
        )
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value=value, key=key) for topic, key, value in batch
            ]
            metadata = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return [
            Sent(topic, key, value, int(meta.partition), int(meta.offset))
            for (topic, key, value), meta in zip(batch, metadata, strict=True)
        ]

    return asyncio.run(run())


def _consumer(bootstrap: str, group: str | None = None) -> Any:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_BYTES,
        fetch_max_bytes=4 * MAX_BYTES,
    )


async def _partitions(client: Any, topic: str) -> list[int]:
    known = client.partitions_for_topic(topic)
    if not known:
        await client._client.force_metadata_update()
        known = client.partitions_for_topic(topic) or set()
    return sorted(known)


async def _read_until(consumer: Any, topic: str, last: dict[int, int], seconds: float) -> list[Any]:
    """Records of *topic* from the start up to offset *last[partition]* of each partition."""
    wanted = {p: offset for p, offset in last.items() if offset >= 0}
    consumer.assign([TopicPartition(topic, p) for p in last])
    seek_to_start(consumer)
    records: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while wanted and loop.time() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for tp, part in batch.items():
            end = wanted.get(tp.partition)
            if end is None:
                continue
            records.extend(record for record in part if record.offset <= end)
            if part and part[-1].offset >= end:
                del wanted[tp.partition]
    if wanted:
        raise AssertionError(f"{topic}: could not read up to offsets {wanted}")
    return records


def read_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record of *topic*, up to a sentinel written to each partition first.

    The embedded broker reports the end of a multi-record batch as its first
    offset + 1, so the reported end offsets of a topic written in batches (the
    dead letters) may lie behind its true end. A sentinel record sent alone
    gets a real offset; everything before it is the topic's content. Sentinels
    carry the SENTINEL header and are left out of the result.
    """

    async def run() -> list[Any]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            partitions = sorted(await producer.partitions_for(topic))
            last = {}
            for partition in partitions:
                meta = await producer.send_and_wait(
                    topic, value=None, key=b"sentinel", partition=partition, headers=[SENTINEL]
                )
                last[partition] = int(meta.offset)
        finally:
            await producer.stop()
        consumer = _consumer(bootstrap)
        await consumer.start()
        try:
            records = await _read_until(consumer, topic, last, timeout)
        finally:
            await consumer.stop()
        return [r for r in records if SENTINEL not in list(r.headers)]

    return asyncio.run(run())


def read_to_reported_end(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record of *topic* up to its reported end offsets, for a topic the test
    must not write to. Exact only where each write ends with a single-record batch
    (the state changelog's end markers); a short read just looks like 'not yet'."""

    async def run() -> list[Any]:
        consumer = _consumer(bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
            ends = await consumer.end_offsets(tps)
            last = {tp.partition: int(end) - 1 for tp, end in ends.items()}
            return await _read_until(consumer, topic, last, timeout)
        finally:
            await consumer.stop()

    return asyncio.run(run())


def committed_offsets(
    bootstrap: str, group: str, topics: Sequence[str]
) -> dict[tuple[str, int], int]:
    """The consumer group's committed offsets (the next offset it would read; 0 if none)."""

    async def run() -> dict[tuple[str, int], int]:
        consumer = _consumer(bootstrap, group)
        await consumer.start()
        try:
            committed: dict[tuple[str, int], int] = {}
            for topic in topics:
                for partition in await _partitions(consumer, topic):
                    offset = await consumer.committed(TopicPartition(topic, partition))
                    committed[(topic, partition)] = int(offset or 0)
            return committed
        finally:
            await consumer.stop()

    return asyncio.run(run())


def latest_by_key(records: Iterable[Any]) -> dict[bytes, bytes | None]:
    """The compacted view of a topic's records: the last value of each key."""
    latest: dict[bytes, bytes | None] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        latest[record.key] = record.value
    return latest


def key_for_each_partition(prefix: str, partitions: int) -> list[str]:
    """One key per partition, each landing there under the producer's default partitioner."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        key = f"{prefix}{n}"
        found.setdefault(DefaultPartitioner()(key.encode(), list(range(partitions)), []), key)
        n += 1
    return [found[p] for p in range(partitions)]
