"""Publishing raw bytes and reading topics back, with plain aiokafka."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


def publish_raw(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes | None]]) -> int:
    """Send (topic, key, value) triples in order and wait for every acknowledgement."""

    async def run() -> int:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value=value, key=key) for topic, key, value in messages
            ]
            await asyncio.gather(*futures)
            return len(futures)
        finally:
            await producer.stop()

    return asyncio.run(run())


def publish_events(bootstrap: str, events: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Send contract events as JSON, keyed by their manager_id."""
    return publish_raw(
        bootstrap,
        (
            (topic, str(event["manager_id"]).encode(), json.dumps(event).encode())
            for topic, event in events
        ),
    )


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
            await consumer.seek_to_beginning()
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
