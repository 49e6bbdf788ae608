"""The event sets the benchmarks consume, and putting them on the broker.

A benchmark company is the demo company (``salespulse/config/demo.toml``:
time zone, funnel, regulations, label lists, KPI defaults) with its twenty
managers replaced by ``--managers`` generated ones, ``m-0001`` ... . The
simulated sales floor staffs itself from that roster, so the first four
managers carry the seed cases and the rest are ordinary team members.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from salespulse.settings import Settings, load_settings
from salespulse.simulate.floor import SalesFloor, topic_for
from salespulse.simulate.publisher import encode

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "salespulse" / "config" / "demo.toml"
TEAMS = ("North", "South", "Key Accounts")

# The throughput set spans two hours of event time ending now; the floor runs
# 120 times faster than the clock, so those two hours are ten simulated days:
# deals move through the funnel, tasks are completed, late or confirmed
# overdue, and the mix of types is the floor's steady state (about 7% deals
# created, 20% stage changes, 25% tasks created, 24% completed, 0.6% overdue
# confirmations, 23% calls), not just the new work of its first minutes.
MIX_SPAN_SECONDS = 2 * 3600.0
MIX_SPEED = 120.0
MIX_STEP_EVENTS = 200


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: bytes
    value: bytes


def manager_ids(count: int) -> list[str]:
    width = max(4, len(str(count)))
    return [f"m-{number:0{width}d}" for number in range(1, count + 1)]


def write_company(path: Path, managers: Iterable[str]) -> Path:
    """The demo company with *managers* as its roster, as a TOML file at *path*."""
    demo = DEMO_CONFIG.read_text()
    head = demo.split("\n[managers.", 1)[0].rstrip()
    lines = [head, ""]
    for position, manager_id in enumerate(managers):
        lines += [
            f"[managers.{manager_id}]",
            f'name = "Manager {manager_id[2:]}"',
            f'team = "{TEAMS[position % len(TEAMS)]}"',
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def company_settings(config: Path, bootstrap: str, partitions: int) -> Settings:
    return load_settings(config=str(config), broker=f"kafka://{bootstrap}", partitions=partitions)


def simulated_mix(settings: Settings, count: int, seed: int = 11) -> list[Message]:
    """*count* events of the simulated floor, ending about now, in the order it hands them out."""
    floor = SalesFloor(settings, seed=seed, speed=MIX_SPEED)
    steps = max(1, count // MIX_STEP_EVENTS)
    step = timedelta(seconds=MIX_SPAN_SECONDS / steps)
    clock = datetime.now(UTC) - timedelta(seconds=MIX_SPAN_SECONDS + 60)
    out: list[Message] = []
    while len(out) < count:
        clock += step
        for event in floor.step(clock, min(MIX_STEP_EVENTS, count - len(out))):
            out.append(
                Message(topic_for(event, settings), event["manager_id"].encode(), encode(event))
            )
    return out


def type_mix(messages: Sequence[Message]) -> dict[str, float]:
    """Share of each event type (read from the JSON without decoding all of it)."""
    counts: collections.Counter[str] = collections.Counter()
    for message in messages:
        start = message.value.find(b'"type":"') + 8
        counts[message.value[start : message.value.find(b'"', start)].decode()] += 1
    return {name: counts[name] / len(messages) for name in sorted(counts)}


def producer(bootstrap: str, linger_ms: int = 20) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        request_timeout_ms=30000,
    )


async def publish(bootstrap: str, messages: Iterable[Message]) -> int:
    """Publish *messages* keyed as given, acknowledged by the broker; returns how many."""
    client = producer(bootstrap)
    await client.start()
    sent = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for message in messages:
            pending.append(await client.send(message.topic, message.value, key=message.key))
            sent += 1
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await client.stop()
    return sent
