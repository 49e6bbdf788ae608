"""Events per second: bare Faust iteration against the salespulse worker, same events.

    .venv/bin/python -m bench.throughput --events 100000

Both consume the same pre-published simulator stream from the embedded broker,
one after the other in this run, so the ratio is meaningful on a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from salespulse.broker import EmbeddedBroker
from salespulse.settings import load_settings
from salespulse.simulate.floor import SalesFloor, topic_for
from salespulse.simulate.publisher import encode
from salespulse.topics import ensure_topics
from tests.support.processes import WorkerProcess
from tests.support.scrape import scrape, total

ROOT = Path(__file__).resolve().parent.parent


async def publish(bootstrap: str, count: int, config: Path) -> None:
    settings = load_settings(config=str(config), broker=f"kafka://{bootstrap}")
    await ensure_topics(settings)
    floor = SalesFloor(settings, seed=11, speed=600.0)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        clock = datetime.now(UTC) - timedelta(hours=2)
        sent, pending = 0, []
        while sent < count:
            clock += timedelta(milliseconds=50)
            for event in floor.step(clock, min(200, count - sent)):
                pending.append(
                    await producer.send(
                        topic_for(event, settings), encode(event), key=event["manager_id"].encode()
                    )
                )
                sent += 1
            if len(pending) > 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def bare_faust(broker: EmbeddedBroker, count: int, workdir: Path) -> float:
    result = workdir / "bare.txt"
    env = {
        **os.environ,
        "BENCH_BROKER": broker.url,
        "BENCH_EXPECTED": str(count),
        "BENCH_RESULT": str(result),
    }
    log = open(workdir / "bare.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_faust", "worker", "-l", "warn", "--without-web"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 600
        while not result.exists() and time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError((workdir / "bare.log").read_text()[-2000:])
            time.sleep(0.2)
        events, seconds = result.read_text().split()
        return int(events) / float(seconds)
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def salespulse_worker(broker: EmbeddedBroker, count: int, config: Path, workdir: Path) -> float:
    worker = WorkerProcess(broker.url, config, workdir, app_id="bench-salespulse")
    worker.start().wait_ready()
    first_time, first_count = None, 0.0
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            seen = total(scrape(worker.metrics_port), "salespulse_events_total")
            now = time.perf_counter()
            if first_time is None and seen > 0:
                first_time, first_count = now, seen
            if seen >= count:
                assert first_time is not None
                return (seen - first_count) / (now - first_time)
            time.sleep(0.05)
        raise TimeoutError("worker did not finish")
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    config = ROOT / "salespulse" / "config" / "demo.toml"
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        workdir = Path(tmp)
        started = time.perf_counter()
        asyncio.run(publish(broker.bootstrap, args.events, config))
        print(f"published {args.events} events in {time.perf_counter() - started:.1f}s")
        bare = bare_faust(broker, args.events, workdir)
        print(f"bare Faust iteration   {bare:10.0f} events/s")
        worker = salespulse_worker(broker, args.events, config, workdir)
        print(f"salespulse worker      {worker:10.0f} events/s")
        print(f"ratio worker / bare    {worker / bare:10.2f}")


if __name__ == "__main__":
    main()
