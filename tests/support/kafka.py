"""Publishing raw bytes and reading topics back, with plain aiokafka."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor


def publish_acked(
    bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]]
) -> list[tuple[str, int, int]]:
    """Send (topic, key, value) triples in order; (topic, partition, offset) of each, as acked."""

    async def run() -> list[tuple[str, int, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value=value, key=key) for topic, key, value in messages
            ]
            acks = await asyncio.gather(*futures)
            return [(ack.topic, ack.partition, ack.offset) for ack in acks]
        finally:
            await producer.stop()

    return asyncio.run(run())


def publish_to_partition(
    bootstrap: str, topic: str, partition: int, key: bytes, value: bytes
) -> None:
    """One message on a partition of the caller's choice, as a producer with another
    partitioner than the contract's would place it."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value=value, key=key, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(run())


def publish_raw(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> int:
    """Send (topic, key, value) triples in order and wait for every acknowledgement."""
    return len(publish_acked(bootstrap, messages))


def as_messages(
    events: Sequence[tuple[str, dict[str, Any]]],
) -> list[tuple[str, bytes | None, bytes | None]]:
    """Contract events as (topic, key, value): JSON keyed by their manager_id."""
    return [
        (topic, str(event["manager_id"]).encode(), json.dumps(event).encode())
        for topic, event in events
    ]


def publish_events(bootstrap: str, events: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Send contract events as JSON, keyed by their manager_id."""
    return publish_raw(bootstrap, as_messages(events))


class _AsFaust(RoundRobinPartitionAssignor):  # type: ignore[misc]
    name = "faust"


def commit_offsets(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit *offsets* for *group*, as an operator's reset tool would, while its workers
    are stopped: by joining the group (the embedded broker takes no commit from outside)."""

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            # The group's protocol is Faust's; a plain round robin under its name joins it.
            partition_assignment_strategy=(_AsFaust,),
        )
        await consumer.start()
        try:
            tps = {TopicPartition(t, p): offset for (t, p), offset in offsets.items()}
            consumer.subscribe(sorted({tp.topic for tp in tps}))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while not set(tps) <= consumer.assignment():
                if loop.time() > deadline:
                    raise AssertionError(f"never assigned {sorted(tps)} in group {group}")
                await consumer.getmany(timeout_ms=200, max_records=1)
            await consumer.commit(tps)
        finally:
            await consumer.stop()

    asyncio.run(run())


def seek_to_start(consumer: Any) -> None:
    """Position each assigned partition at offset 0, where the embedded broker's log starts.

    Not ``seek_to_beginning``: that asks the broker for each partition's earliest
    offset, and the embedded tansu (0.6) answers with the offset of the record
    batch *stored* first, not the lowest one. When two producers write a new
    partition at once, the batch given offset 1 can be stored before the one
    given offset 0, and a reader "from the beginning" starts at 1 and never sees
    offset 0, although the broker acknowledged it and serves it to anyone who
    asks for it. Against a broker that has deleted offset 0 (retention), the
    consumer's ``auto_offset_reset="earliest"`` moves on to the first one kept.
    """
    for tp in consumer.assignment():
        consumer.seek(tp, 0)


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list[Any]:
    """Read at least *expected* records from the start of every partition of *topic*."""

    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic) or set()
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            seek_to_start(consumer)
            records: list[Any] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(records) < expected and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    records.extend(part)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(run())
