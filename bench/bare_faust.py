"""Two Faust baselines over the CRM topics: the framework's floor and a first attempt.

``BENCH_MODE=bare`` (default)
    one agent iterates the three CRM topics and does nothing: what Faust
    itself costs per event.
``BENCH_MODE=echo``
    for the latency run: the bare agent from the newest offsets on, appending
    ``<key> <perf_counter>`` to BENCH_RESULT for every event whose key starts
    with ``probe-`` (perf_counter is CLOCK_MONOTONIC, comparable between
    processes on Linux): when plain Faust iteration sees a probe event.
``BENCH_MODE=table``
    the agent a user would write first: a windowed table counting events per
    manager, ``counts[key] += 1`` for every event (a tumbling one-day window,
    relative to now), so every event writes a changelog record.

Run as ``python -m bench.bare_faust worker -l warn --without-web`` with
BENCH_BROKER (kafka://host:port), BENCH_EXPECTED (events to wait for),
BENCH_PARTITIONS, BENCH_RESULT, BENCH_APP_ID (the consumer group) and
BENCH_DATADIR (Faust's data directory) set. Once it has seen BENCH_EXPECTED events
it writes JSON to BENCH_RESULT: ``events``, ``seconds`` from the first event
to the last (in table mode, until the producer has flushed the last
changelog record too) and ``cpu_seconds`` the process used in that time.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import faust

from streams.batching import BatchingApp

MODE = os.environ.get("BENCH_MODE", "bare")
EXPECTED = int(os.environ.get("BENCH_EXPECTED", "0"))
RESULT = Path(os.environ.get("BENCH_RESULT", "/dev/null"))
PARTITIONS = int(os.environ.get("BENCH_PARTITIONS", "4"))

options: dict[str, Any] = {
    "broker": os.environ.get("BENCH_BROKER", "kafka://127.0.0.1:9092"),
    "store": "memory://",
    "datadir": os.environ.get("BENCH_DATADIR", "/tmp/salespulse-bench-{appid}-data"),
    "web_enabled": False,
    "topic_partitions": PARTITIONS,
    "consumer_auto_offset_reset": "latest" if MODE == "echo" else "earliest",
    "broker_session_timeout": 6,
    "broker_heartbeat_interval": 1,
}
app_id = os.environ.get("BENCH_APP_ID", f"bench-{MODE}-{os.getpid()}")
app: faust.App
if MODE == "batched":  # Faust with salespulse's consumer; every other mode is plain Faust
    app = BatchingApp(app_id, batched_topics=["crm.deals", "crm.tasks", "crm.calls"], **options)
else:
    app = faust.App(app_id, **options)
state: dict[str, float] = {"seen": 0, "first": 0.0, "cpu": 0.0}

topics = app.topic(
    "crm.deals",
    "crm.tasks",
    "crm.calls",
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)


def _start_clock() -> None:
    state["first"] = time.perf_counter()
    state["cpu"] = time.process_time()


def _write_result() -> None:
    seconds = time.perf_counter() - state["first"]
    cpu = time.process_time() - state["cpu"]
    scratch = RESULT.with_suffix(".tmp")
    scratch.write_text(json.dumps({"events": EXPECTED, "seconds": seconds, "cpu_seconds": cpu}))
    scratch.rename(RESULT)


if MODE == "bare":

    @app.agent(topics)
    async def iterate(stream: Any) -> None:
        async for _ in stream:
            if state["seen"] == 0:
                _start_clock()
            state["seen"] += 1
            if state["seen"] == EXPECTED:
                _write_result()

elif MODE == "batched":

    @app.agent(topics)
    async def iterate_batches(stream: Any) -> None:
        async for event in stream.events():
            if state["seen"] == 0:
                _start_clock()
            state["seen"] += len(event.message.records)
            if state["seen"] >= EXPECTED:
                _write_result()

elif MODE == "echo":
    echoes = RESULT.open("a", buffering=1)

    @app.agent(topics)
    async def echo(stream: Any) -> None:
        async for event in stream.events():
            if event.key.startswith(b"probe-"):
                echoes.write(f"{event.key.decode()} {time.perf_counter()}\n")

elif MODE == "table":
    counts: Any = app.Table(
        "counts",
        default=int,
        partitions=PARTITIONS,
    ).tumbling(86400, expires=2 * 86400)

    @app.agent(topics)
    async def count(stream: Any) -> None:
        async for event in stream.events():
            if state["seen"] == 0:
                _start_clock()
            counts[event.key.decode()] += 1  # (manager, window) -> count
            state["seen"] += 1
            if state["seen"] == EXPECTED:
                await app.producer.flush()
                _write_result()

else:
    raise SystemExit(f"unknown BENCH_MODE {MODE!r}; use bare, echo or table")


if __name__ == "__main__":
    app.main()
