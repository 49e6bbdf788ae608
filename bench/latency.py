"""Latency: an event produced -> its effect in the worker's state and in /metrics.

The harness produces a steady stream (the simulated floor of the company,
in real time) and, within it, probe events: ``call.ended`` for one of ten
dedicated probe managers (``probe-01`` ..), round robin, 20 a second. The
n-th probe event of a probe manager is stamped (perf_counter, just before
``producer.send``) and counts as seen once that manager's calls add up to n.
Four detectors watch for it side by side, each stamping when it first sees
it (perf_counter is CLOCK_MONOTONIC on Linux, so stamps of different
processes compare):

- **fetched**: a plain aiokafka consumer of the CRM topics with the fetch
  wait Faust gives its consumer (1.5 s), stamped on receipt: the floor that
  broker and fetch settings set before any Faust or worker code runs. The
  embedded broker does not answer a waiting fetch when data arrives, so on
  it this floor is hundreds of milliseconds; Kafka answers at once.
- **faust**: a bare Faust agent (``bench.bare_faust``, BENCH_MODE=echo) on
  the same topics, stamping probe events as it iterates them: the floor of
  Faust's own consumer on this broker.
- **applied**: the harness consumes the worker's state changelog (fetch wait
  5 ms) and decodes the probe manager's record; stamped on receipt. The
  changelog is written once every ``changelog_interval_seconds`` (1 s), so
  this is when the event became durable, up to that long after a scrape
  could show it: not a stand-in for *visible*.
- **visible**: the harness polls ``/metrics`` (a new request ``poll`` seconds
  after the previous one returned) and sums ``salespulse_calls_total`` of the
  probe manager. A probe first seen in a scrape is stamped with that scrape's
  start, an upper bound; it became visible after the previous scrape's start,
  so the resolution is the gap between scrape starts (printed). Only where
  scrapes are cheap: each one runs on the worker's event loop.

Samples sent in the first seconds (warm-up) are not counted; probes still
unseen 20 s after the last send count as lost.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import procs, workload
from salespulse.broker import EmbeddedBroker
from salespulse.settings import Settings
from salespulse.simulate.floor import SalesFloor, topic_for
from salespulse.simulate.publisher import encode
from salespulse.topics import ensure_topics
from streams.state import SEP, decode_core

PROBES = 10
PROBE_RATE = 20.0  # probe events per second, part of the total rate
WARMUP_SECONDS = 3.0
DRAIN_SECONDS = 20.0
ECHO_JOIN_SECONDS = 3.0
TICK_SECONDS = 0.01
TARGET_P99_SECONDS = 1.0
# What Faust's aiokafka driver gives its consumer (faust/transport/drivers/aiokafka.py).
FAUST_FETCH_WAIT_MS = 1500
DETECTORS = ("fetched", "faust", "applied", "visible")


def probe_id(number: int) -> str:
    return f"probe-{number:02d}"


@dataclass
class Sample:
    probe: str
    nth: int  # the probe manager's n-th probe event
    sent: float
    counted: bool  # sent after the warm-up
    fetched: float | None = None
    faust: float | None = None
    applied: float | None = None
    visible: float | None = None


@dataclass
class LatencyRun:
    name: str
    managers: int
    rate: float
    seconds: float
    poll: float
    samples: list[Sample]
    produced: int
    scrape_gaps: list[float] = field(default_factory=list)  # between scrape starts
    scrape_seconds: list[float] = field(default_factory=list)

    def latencies(self, which: str) -> list[float]:
        out = []
        for sample in self.samples:
            at = getattr(sample, which)
            if sample.counted and at is not None:
                out.append(at - sample.sent)
        return sorted(out)

    def lost(self, which: str) -> int:
        return sum(1 for s in self.samples if s.counted and getattr(s, which) is None)


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return sorted(values)[index]


def _probe_event(number: int, nth: int, run_tag: str) -> tuple[str, bytes, bytes]:
    manager = probe_id(number)
    event = {
        "event_id": f"bench-{run_tag}-{manager}-{nth}",
        "type": "call.ended",
        "occurred_at": datetime.now(UTC).isoformat(),
        "manager_id": manager,
        "source": "bench",
        "call_id": f"P-{run_tag}-{manager}-{nth}",
        "direction": "outbound",
        "duration_seconds": 60.0,
        "answered": True,
    }
    return manager, manager.encode(), orjson.dumps(event)


def _calls_in_record(value: bytes) -> float:
    """Calls counted in a manager's core record of the changelog (streams.state)."""
    counters = decode_core(value).state.counters
    return float(sum(value for cell, value in counters.items() if cell[0] == "calls_total"))


def _calls_in_scrape(body: bytes) -> dict[str, float]:
    calls: dict[str, float] = collections.defaultdict(float)
    for line in body.split(b"\n"):
        if line.startswith(b"salespulse_calls_total{") and b'manager="probe-' in line:
            start = line.index(b'manager="') + 9
            manager = line[start : line.index(b'"', start)].decode()
            calls[manager] += float(line.rsplit(b" ", 1)[1])
    return calls


class _Pending:
    """Samples waiting to be seen, per probe manager, in order of their n."""

    def __init__(self) -> None:
        self.by_probe: dict[str, list[Sample]] = collections.defaultdict(list)

    def add(self, sample: Sample) -> None:
        self.by_probe[sample.probe].append(sample)

    def mark(self, probe: str, count: float, at: float, which: str) -> None:
        for sample in self.by_probe.get(probe, ()):
            if sample.nth > count:
                break
            if getattr(sample, which) is None:
                setattr(sample, which, at)

    def done(self, which: str) -> bool:
        return all(
            getattr(s, which) is not None for samples in self.by_probe.values() for s in samples
        )


async def _produce(
    bootstrap: str,
    settings: Settings,
    floor: SalesFloor,
    rate: float,
    seconds: float,
    pending: _Pending,
    samples: list[Sample],
    run_tag: str,
) -> int:
    client = workload.producer(bootstrap, linger_ms=5)
    await client.start()
    produced = 0
    nth: dict[str, int] = collections.defaultdict(int)
    try:
        started = time.perf_counter()
        wall = datetime.now(UTC)
        floor_rate = rate - PROBE_RATE
        floor_sent = probes_sent = 0
        inflight: list[asyncio.Future[object]] = []
        while (elapsed := time.perf_counter() - started) < seconds:
            due_probes = int(elapsed * PROBE_RATE) - probes_sent
            for _ in range(due_probes):
                number = probes_sent % PROBES + 1
                manager, key, value = _probe_event(number, nth[probe_id(number)] + 1, run_tag)
                nth[manager] += 1
                sample = Sample(
                    manager, nth[manager], time.perf_counter(), elapsed >= WARMUP_SECONDS
                )
                inflight.append(await client.send(settings.topic_calls, value, key=key))
                samples.append(sample)
                pending.add(sample)
                probes_sent += 1
            wanted = int(elapsed * floor_rate) - floor_sent
            if wanted > 0:
                for event in floor.step(wall + timedelta(seconds=elapsed), wanted):
                    inflight.append(
                        await client.send(
                            topic_for(event, settings),
                            encode(event),
                            key=event["manager_id"].encode(),
                        )
                    )
                floor_sent += wanted
            if len(inflight) > 2000:
                await asyncio.gather(*inflight)
                inflight.clear()
            await asyncio.sleep(TICK_SECONDS)
        await asyncio.gather(*inflight)
        produced = floor_sent + probes_sent
    finally:
        await client.stop()
    return produced


async def _watch_changelog(
    bootstrap: str, topic: str, partitions: int, pending: _Pending, stop: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=5,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        prefix = f"m{SEP}".encode()
        marker = f"{SEP}probe-".encode()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            at = time.perf_counter()
            for records in batches.values():
                for record in records:
                    key = record.key or b""
                    if key.startswith(prefix) and marker in key and record.value:
                        probe = key.rsplit(SEP.encode(), 1)[1].decode()
                        pending.mark(probe, _calls_in_record(record.value), at, "applied")
    finally:
        await consumer.stop()


async def _watch_fetches(
    bootstrap: str, topics: tuple[str, ...], partitions: int, pending: _Pending, stop: asyncio.Event
) -> None:
    """A plain consumer of the CRM topics with Faust's fetch wait: the broker's floor."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=FAUST_FETCH_WAIT_MS
    )
    await consumer.start()
    seen: dict[str, int] = collections.defaultdict(int)
    try:
        tps = [TopicPartition(topic, p) for topic in topics for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            at = time.perf_counter()
            for records in batches.values():
                for record in records:
                    key = record.key or b""
                    if key.startswith(b"probe-"):
                        probe = key.decode()
                        seen[probe] += 1
                        pending.mark(probe, seen[probe], at, "fetched")
    finally:
        await consumer.stop()


async def _watch_metrics(
    worker: procs.Worker,
    poll: float,
    pending: _Pending | None,
    run: LatencyRun,
    stop: asyncio.Event,
) -> None:
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        last_start: float | None = None
        while not stop.is_set():
            scrape = await loop.run_in_executor(pool, worker.scrape)
            if last_start is not None:
                run.scrape_gaps.append(scrape.started - last_start)
            last_start = scrape.started
            run.scrape_seconds.append(scrape.seconds)
            if pending is not None:
                for probe, count in _calls_in_scrape(scrape.body).items():
                    pending.mark(probe, count, scrape.started, "visible")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll)


async def _measure(
    broker: EmbeddedBroker,
    settings: Settings,
    worker: procs.Worker,
    run: LatencyRun,
    detect_in_metrics: bool,
) -> None:
    pending = _Pending()
    floor = SalesFloor(settings, seed=5)
    stop_changelog, stop_metrics = asyncio.Event(), asyncio.Event()
    changelog = asyncio.create_task(
        _watch_changelog(
            broker.bootstrap,
            f"{worker.app_id}-state-changelog",
            settings.partitions,
            pending,
            stop_changelog,
        )
    )
    fetches = asyncio.create_task(
        _watch_fetches(
            broker.bootstrap, settings.source_topics, settings.partitions, pending, stop_changelog
        )
    )
    metrics = asyncio.create_task(
        _watch_metrics(worker, run.poll, pending if detect_in_metrics else None, run, stop_metrics)
    )
    await asyncio.sleep(1.0)  # let the changelog consumer reach the end first
    try:
        run.produced = await _produce(
            broker.bootstrap,
            settings,
            floor,
            run.rate,
            run.seconds,
            pending,
            run.samples,
            run_tag=worker.app_id,
        )
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            worker.alive()
            if (
                pending.done("applied")
                and pending.done("fetched")
                and (not detect_in_metrics or pending.done("visible"))
            ):
                break
            await asyncio.sleep(0.1)
    finally:
        stop_changelog.set()
        stop_metrics.set()
        await asyncio.gather(changelog, fetches, metrics)


def run(
    name: str,
    workdir: Path,
    *,
    managers: int,
    partitions: int,
    rate: float,
    seconds: float,
    poll: float,
    detect_in_metrics: bool,
) -> LatencyRun:
    """One latency run on its own broker and worker."""
    with EmbeddedBroker() as broker:
        config = workload.write_company(
            workdir / f"latency-{managers}.toml", workload.manager_ids(managers)
        )
        settings = workload.company_settings(config, broker.bootstrap, partitions)
        asyncio.run(ensure_topics(settings))
        tag = f"latency-{managers}"
        worker = procs.Worker(
            broker.url, config, workdir, app_id=f"bench-{tag}", partitions=partitions
        )
        echo = procs.Child(
            "bench.bare_faust",
            ["worker", "-l", "warn", "--without-web"],
            {
                "BENCH_MODE": "echo",
                "BENCH_APP_ID": f"bench-echo-{tag}",
                "BENCH_BROKER": broker.url,
                "BENCH_PARTITIONS": str(partitions),
                "BENCH_RESULT": str(workdir / f"echo-{tag}.txt"),
            },
            workdir,
            f"echo-{tag}",
        )
        worker.start()
        try:
            worker.wait_ready(120)
            time.sleep(ECHO_JOIN_SECONDS)  # the echo agent joins its group meanwhile
            result = LatencyRun(name, managers, rate, seconds, poll, samples=[], produced=0)
            asyncio.run(_measure(broker, settings, worker, result, detect_in_metrics))
        finally:
            worker.stop()
            echo.stop()
        _mark_echoes(workdir / f"echo-{tag}.txt", result.samples)
        return result


def _mark_echoes(path: Path, samples: list[Sample]) -> None:
    pending = _Pending()
    for sample in samples:
        pending.add(sample)
    seen: dict[str, int] = collections.defaultdict(int)
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        probe, at = line.split()
        seen[probe] += 1
        pending.mark(probe, seen[probe], float(at), "faust")


def report(runs: list[LatencyRun]) -> list[str]:
    lines = [
        "LATENCY: probe event produced -> fetched (plain consumer, Faust's 1.5 s fetch wait) "
        "/ faust (bare Faust agent) / applied (state changelog) / visible (/metrics)",
        f"  {WARMUP_SECONDS:.0f} s warm-up not counted; 'visible' is stamped with the start of "
        "the first scrape that shows it (an upper bound)",
    ]
    for result in runs:
        gaps = result.scrape_gaps
        lines.append(
            f"  {result.name}: {result.managers:,} managers, {result.rate:,.0f} events/s for "
            f"{result.seconds:.0f} s ({result.produced:,} events, "
            f"{sum(s.counted for s in result.samples)} probes counted)"
        )
        for which in DETECTORS:
            values = result.latencies(which)
            if not values:
                continue
            p99 = quantile(values, 0.99)
            verdict = "met" if p99 <= TARGET_P99_SECONDS else "NOT MET"
            lines.append(
                f"    {which:<8} p50 {quantile(values, 0.5) * 1000:7.0f} ms  "
                f"p90 {quantile(values, 0.9) * 1000:7.0f} ms  p99 {p99 * 1000:7.0f} ms  "
                f"max {values[-1] * 1000:7.0f} ms  lost {result.lost(which)}  "
                f"(target p99 <= {TARGET_P99_SECONDS:.0f} s: {verdict})"
            )
        if result.scrape_seconds:
            lines.append(
                f"    /metrics every {result.poll:g} s after the previous one: "
                f"{len(result.scrape_seconds)} scrapes, each "
                f"p50 {statistics.median(result.scrape_seconds) * 1000:.0f} ms, "
                f"max {max(result.scrape_seconds) * 1000:.0f} ms"
                + (
                    f"; resolution of 'visible' (gap between scrape starts) "
                    f"p50 {statistics.median(gaps) * 1000:.0f} ms, "
                    f"p99 {quantile(gaps, 0.99) * 1000:.0f} ms"
                    if gaps and any(s.visible for s in result.samples)
                    else ""
                )
            )
    return lines
