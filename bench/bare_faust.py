"""The framework's floor: a Faust agent that iterates the CRM topics and does nothing.

Run as ``python -m bench.bare_faust worker`` with BENCH_BROKER, BENCH_EXPECTED
and BENCH_RESULT set; it writes "events seconds" to BENCH_RESULT once it has
seen BENCH_EXPECTED events, measured from the first event to the last.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import faust

app = faust.App(
    f"bench-bare-{os.getpid()}",
    broker=os.environ.get("BENCH_BROKER", "kafka://127.0.0.1:9092"),
    store="memory://",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
)
EXPECTED = int(os.environ.get("BENCH_EXPECTED", "0"))
RESULT = Path(os.environ.get("BENCH_RESULT", "/dev/null"))
state = {"seen": 0, "first": 0.0}

topics = app.topic(
    "crm.deals",
    "crm.tasks",
    "crm.calls",
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)


@app.agent(topics)
async def iterate(stream: Any) -> None:
    async for _ in stream:
        if state["seen"] == 0:
            state["first"] = time.perf_counter()
        state["seen"] += 1
        if state["seen"] == EXPECTED:
            elapsed = time.perf_counter() - state["first"]
            RESULT.write_text(f"{EXPECTED} {elapsed}\n")  # noqa: ASYNC240 - once, at the end


if __name__ == "__main__":
    app.main()
