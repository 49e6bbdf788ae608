"""The limit for one Python process: aiokafka ``getmany`` and a JSON decode of every value.

    python -m bench.raw_consume BOOTSTRAP EXPECTED RESULT TOPIC [TOPIC ...]

Consumes the topics from the beginning (a fresh consumer group, like a new
worker) until EXPECTED messages have been fetched and decoded with orjson,
then writes JSON to RESULT: ``events`` and ``seconds`` from the end of the first
batch to the last decoded message (the first batch, which may have been
prefetched while the group was joining, is not counted), ``cpu_seconds``
used in that time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

DEADLINE_SECONDS = 600.0


async def consume(bootstrap: str, expected: int, topics: list[str]) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{os.getpid()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    # The clock starts after the first batch: aiokafka fetches in the background,
    # so the first getmany may hand out what was prefetched during the group join.
    first_batch = 0
    first = cpu = 0.0
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while seen < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {seen} of {expected} messages within the deadline")
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batches.values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
            if seen and not first_batch:
                first_batch = seen
                first, cpu = time.perf_counter(), time.process_time()
        return {
            "events": float(seen - first_batch),
            "seconds": time.perf_counter() - first,
            "cpu_seconds": time.process_time() - cpu,
        }
    finally:
        await consumer.stop()


def main() -> None:
    bootstrap, expected, result, *topics = sys.argv[1:]
    outcome = asyncio.run(consume(bootstrap, int(expected), topics))
    scratch = Path(result).with_suffix(".tmp")
    scratch.write_text(json.dumps(outcome))
    scratch.rename(result)


if __name__ == "__main__":
    main()
