"""Watching a consumer group's progress from the broker, without asking the worker.

A scrape of a large company's /metrics costs the worker seconds of its only
event loop (see docs/performance.md), so the throughput run follows the
worker's committed offsets instead: Faust commits every 10,000 acknowledged
messages (``broker_commit_every``) and every 2.8 s, and salespulse
acknowledges a batch only once its state is in the changelog, so a commit
is a lower bound of what the worker has counted at that moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True, slots=True)
class Progress:
    at: float  # perf_counter when the answer arrived
    committed: int  # sum of committed offsets over the watched partitions
    cpu: float  # the worker's CPU seconds at that moment


def partitions_of(topics: Iterable[str], partitions: int) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for topic in topics for p in range(partitions)]


async def committed(admin: AIOKafkaAdminClient, group: str, tps: list[TopicPartition]) -> int:
    offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    return sum(max(0, meta.offset) for meta in offsets.values())


async def end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


def admin_client(bootstrap: str) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)


async def follow_commits(
    bootstrap: str,
    group: str,
    tps: list[TopicPartition],
    expected: int,
    cpu: object,
    *,
    interval: float = 0.05,
    limit_seconds: float = 900.0,
) -> list[Progress]:
    """Poll the group's committed offsets until they reach *expected*; every change seen.

    *cpu* is a callable returning the worker's CPU seconds, read with each change.
    """
    assert callable(cpu)
    admin = admin_client(bootstrap)
    await admin.start()
    seen: list[Progress] = []
    try:
        deadline = time.monotonic() + limit_seconds
        last = -1
        while time.monotonic() < deadline:
            count = await committed(admin, group, tps)
            if count != last:
                seen.append(Progress(time.perf_counter(), count, float(cpu())))
                last = count
            if count >= expected:
                return seen
            await asyncio.sleep(interval)
        raise TimeoutError(
            f"group {group} committed {last} of {expected} within {limit_seconds:.0f}s"
        )
    finally:
        await admin.close()
