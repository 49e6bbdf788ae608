"""Throughput, side by side: five consumers of the same pre-published event set.

    .venv/bin/python -m bench.throughput --events 200000 --managers 1000 --partitions 4

This is the throughput section of the full harness (``python -m bench.run``,
see docs/performance.md), runnable on its own. The simulated sales floor's
event set is published once to an embedded broker, keyed by manager_id, and
consumed five times, one after another, each by a fresh consumer group:

1. raw aiokafka ``getmany`` + ``orjson.loads`` of every value: the limit of
   one Python process;
2. a bare Faust agent that iterates the three CRM topics and does nothing;
3. a naive Faust agent that counts events per manager in a windowed table,
   ``counts[key] += 1`` per event: what a user would write first;
4. the salespulse worker, exactly as ``salespulse worker`` runs it;
5. a Quix Streams app counting events per manager in a one-day tumbling
   window, its state in RocksDB (bench.quix_peer, in its own virtual
   environment; ``--no-quix`` leaves it out, and without a package index to
   make that environment the report says so and goes on);

and optionally (``--variant batch_max_seconds=1``, repeatable) the worker
again with changed settings, to try a tuning side by side, before the Quix
peer.

Faust-based consumers (2-4) are timed the same way, from the broker: their
committed offsets, polled every 50 ms, from the first commit to the last
commit before the final one (the final commit may wait for the 2.8 s commit
timer; the ones before are triggered every 10,000 acknowledged messages).
That is the steady rate, without start-up and group join. The baselines also
time themselves in-process (first to last event); both are printed. The
worker is not timed by polling /metrics: with 1,000 managers one scrape
renders about 300,000 series (32 MB) and occupies the worker's event loop for
seconds, so polling would measure the scrape. It is scraped once, at the
end, to check that every event has exactly one outcome. The Quix peer
commits every 5 s (Quix's default), too seldom to time from the broker; it
times itself from its first event to the end of its final checkpoint, and
checks that its windows' counts add up to the event set.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import offsets, procs, quix_peer, workload
from bench.offsets import Progress
from salespulse.broker import EmbeddedBroker
from salespulse.settings import Settings
from salespulse.topics import ensure_topics

TARGET_VS_BARE = 0.7
TARGET_VS_NAIVE = 3.0
CONSUMER_TIMEOUT = 900.0


@dataclass
class Rate:
    name: str
    events: int
    seconds: float
    cpu_seconds: float
    in_process: float | None = None  # events/s the consumer measured itself
    notes: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")


@dataclass
class Throughput:
    events: int
    managers: int
    partitions: int
    mix: dict[str, float]
    raw: Rate
    bare: Rate
    naive: Rate
    worker: Rate
    changelog_records: int
    scrape_seconds: float
    scrape_bytes: int
    outcomes: dict[str, float]
    variants: list[WorkerRun] = field(default_factory=list)
    quix: Rate | None = None
    quix_missing: str = ""  # why there is no Quix row

    def report(self) -> list[str]:
        peers = [self.quix] if self.quix else []
        rates = [self.raw, self.bare, self.naive, self.worker, *peers]
        width = max(len(rate.name) for rate in rates + [v.rate for v in self.variants]) + 1
        times = "five" if self.quix else "four"
        lines = [
            f"THROUGHPUT: {self.events:,} events, {self.partitions} partitions, "
            f"{self.managers:,} managers; one event set, consumed {times} times, one after another",
            "  mix: " + ", ".join(f"{name} {share:.1%}" for name, share in self.mix.items()),
            f"  {'consumer':<{width + 3}}{'events/s':>10}{'events/CPU-s':>14}{'in-process':>12}",
        ]
        for number, rate in enumerate((self.raw, self.bare, self.naive, self.worker), start=1):
            own = f"{rate.in_process:12,.0f}" if rate.in_process else f"{'':12}"
            lines.append(
                f"  {number}  {rate.name:<{width}}{rate.per_second:10,.0f}"
                f"{rate.per_cpu_second:14,.0f}{own}"
            )
        for variant in self.variants:
            rate = variant.rate
            lines.append(
                f"  4' {rate.name:<{width}}{rate.per_second:10,.0f}{rate.per_cpu_second:14,.0f}"
                f"{'':12}  ({variant.changelog_records / self.events:.2f} changelog records "
                f"per event; 4'/2 {rate.per_second / self.bare.per_second:.2f}, "
                f"4'/3 {rate.per_second / self.naive.per_second:.2f})"
            )
        if self.quix:
            rate = self.quix
            lines.append(
                f"  5  {rate.name:<{width}}{rate.per_second:10,.0f}{rate.per_cpu_second:14,.0f}"
            )
        elif self.quix_missing:
            lines.append(f"  5  Quix Streams peer skipped: {self.quix_missing}")
        vs_bare = self.worker.per_second / self.bare.per_second
        vs_naive = self.worker.per_second / self.naive.per_second
        vs_raw = self.worker.per_second / self.raw.per_second
        cpu_bare = self.worker.per_cpu_second / self.bare.per_cpu_second
        cpu_naive = self.worker.per_cpu_second / self.naive.per_cpu_second
        lines += [
            f"  4/2 worker / bare Faust    {vs_bare:6.2f}  (per CPU-s {cpu_bare:.2f})  "
            f"target >= {TARGET_VS_BARE}: {'met' if vs_bare >= TARGET_VS_BARE else 'NOT MET'}",
        ]
        if self.quix:
            vs_quix = self.worker.per_second / self.quix.per_second
            cpu_quix = self.worker.per_cpu_second / self.quix.per_cpu_second
            lines.append(f"  4/5 worker / Quix          {vs_quix:6.2f}  (per CPU-s {cpu_quix:.2f})")
        lines += [
            f"  4/3 worker / naive table   {vs_naive:6.2f}  (per CPU-s {cpu_naive:.2f})  "
            f"target >= {TARGET_VS_NAIVE}: {'met' if vs_naive >= TARGET_VS_NAIVE else 'NOT MET'}",
            f"  4/1 worker / raw aiokafka  {vs_raw:6.3f}",
            "  worker check: salespulse_events_total = "
            + ", ".join(f"{k} {v:,.0f}" for k, v in self.outcomes.items())
            + f"; {self.changelog_records:,} changelog records written "
            f"({self.changelog_records / self.events:.2f} per event)",
            f"  one /metrics scrape after the run: {self.scrape_seconds:.2f} s, "
            f"{self.scrape_bytes / 1e6:.1f} MB",
        ]
        for rate in rates:
            lines += [f"  note ({rate.name}): {note}" for note in rate.notes]
        return lines


def steady_rate(name: str, seen: list[Progress], expected: int) -> Rate:
    """Events/s between the first commit and the last one before the final commit."""
    points = [p for p in seen if p.committed > 0]
    if not points or points[-1].committed < expected:
        raise RuntimeError(f"{name}: the commits never reached {expected}")
    first = points[0]
    inner = [p for p in points[1:-1] if p.committed < expected]
    notes = []
    last = inner[-1] if inner else points[-1]
    if last.committed - first.committed < expected // 3:
        # Too few commits in between (a small --events): time to the final commit.
        last = points[-1]
        notes.append("timed to the final commit (few commits), up to 2.8 s pessimistic")
    return Rate(
        name,
        events=last.committed - first.committed,
        seconds=last.at - first.at,
        cpu_seconds=last.cpu - first.cpu,
        notes=notes,
    )


def follow(
    bootstrap: str, group: str, settings: Settings, expected: int, cpu: Callable[[], float]
) -> list[Progress]:
    tps = offsets.partitions_of(settings.source_topics, settings.partitions)
    return asyncio.run(
        offsets.follow_commits(bootstrap, group, tps, expected, cpu, limit_seconds=CONSUMER_TIMEOUT)
    )


def raw_consumer(broker: EmbeddedBroker, settings: Settings, count: int, workdir: Path) -> Rate:
    child = procs.Child(
        "bench.raw_consume",
        [broker.bootstrap, str(count), str(workdir / "raw.json"), *settings.source_topics],
        {},
        workdir,
        "raw",
    )
    try:
        result = child.wait_result(CONSUMER_TIMEOUT)
    finally:
        child.stop()
    return Rate(
        "raw aiokafka getmany + orjson",
        events=int(result["events"]),
        seconds=result["seconds"],
        cpu_seconds=result["cpu_seconds"],
        notes=["timed in-process after the first batch (prefetched during the join)"],
    )


def faust_baseline(
    broker: EmbeddedBroker, settings: Settings, count: int, workdir: Path, mode: str, name: str
) -> Rate:
    group = f"bench-{mode}-{time.time_ns()}"
    child = procs.Child(
        "bench.bare_faust",
        ["worker", "-l", "warn", "--without-web"],
        {
            "BENCH_MODE": mode,
            "BENCH_APP_ID": group,
            "BENCH_BROKER": broker.url,
            "BENCH_EXPECTED": str(count),
            "BENCH_PARTITIONS": str(settings.partitions),
            "BENCH_RESULT": str(workdir / f"{mode}.json"),
        },
        workdir,
        mode,
    )
    try:
        seen = follow(
            broker.bootstrap, group, settings, count, lambda: procs.cpu_seconds(child.pid)
        )
        result = child.wait_result(60)
    finally:
        child.stop()
    rate = steady_rate(name, seen, count)
    rate.in_process = result["events"] / result["seconds"]
    return rate


@dataclass
class WorkerRun:
    rate: Rate
    changelog_records: int
    scrape: procs.Scrape
    outcomes: dict[str, float]


def salespulse_worker(
    broker: EmbeddedBroker,
    settings: Settings,
    config: Path,
    count: int,
    workdir: Path,
    env: dict[str, str] | None = None,
) -> WorkerRun:
    group = f"bench-worker-{time.time_ns()}"
    worker = procs.Worker(
        broker.url, config, workdir, app_id=group, partitions=settings.partitions, extra_env=env
    )
    worker.start()
    try:
        worker.wait_ready(120)
        seen = follow(
            broker.bootstrap, group, settings, count, lambda: procs.cpu_seconds(worker.pid)
        )
        name = "salespulse worker"
        if env:
            name += " " + " ".join(f"{k.removeprefix('SALESPULSE_')}={v}" for k, v in env.items())
        rate = steady_rate(name, seen, count)
        scrape = worker.scrape()
        outcomes = {
            outcome: procs.sum_samples(
                scrape.body, b"salespulse_events_total", f'outcome="{outcome}"'.encode()
            )
            for outcome in ("processed", "duplicate", "late", "rejected")
        }
        if sum(outcomes.values()) != count:
            raise RuntimeError(f"the worker counted {outcomes}, not {count} events")
        records = procs.sum_samples(scrape.body, b"salespulse_changelog_records_total", b"")
        if records == 0:  # an unlabelled sample has no "{": read it directly
            for line in scrape.body.split(b"\n"):
                if line.startswith(b"salespulse_changelog_records_total "):
                    records = float(line.split()[1])
        return WorkerRun(rate, int(records), scrape, outcomes)
    finally:
        worker.stop()


def quix_consumer(
    broker: EmbeddedBroker,
    settings: Settings,
    count: int,
    workdir: Path,
    log: Callable[[str], None] = print,
) -> Rate:
    """The Quix Streams peer; raises quix_peer.QuixUnavailableError without its environment."""
    python = quix_peer.interpreter(log)
    result = quix_peer.run(
        python,
        broker.bootstrap,
        settings.source_topics,
        settings.partitions,
        count,
        workdir,
        CONSUMER_TIMEOUT,
    )
    return Rate(
        f"Quix Streams {quix_peer.QUIXSTREAMS.split('==')[1]} window count",
        events=int(result["events"]),
        seconds=result["seconds"],
        cpu_seconds=result["cpu_seconds"],
        notes=[
            "timed in-process from its first event to the end of its final checkpoint "
            "(state in RocksDB and its changelog, offsets committed); "
            f"{int(result['windows']):,} (manager, day) windows counting "
            f"{int(result['counted']):,} events, {int(result['late']):,} late"
        ],
    )


def publish_mix(
    broker: EmbeddedBroker, settings: Settings, events: int, log: Callable[[str], None] = print
) -> dict[str, float]:
    """Publish the simulated floor's event set once; returns its mix of types."""
    asyncio.run(ensure_topics(settings))
    messages = workload.simulated_mix(settings, events)
    mix = workload.type_mix(messages)
    started = time.perf_counter()
    asyncio.run(workload.publish(broker.bootstrap, messages))
    log(f"throughput: published {events:,} events in {time.perf_counter() - started:.1f} s")
    return mix


def run(
    broker: EmbeddedBroker,
    workdir: Path,
    config: Path,
    settings: Settings,
    *,
    events: int,
    managers: int,
    variants: Sequence[dict[str, str]] = (),
    quix: bool = True,
    log: Callable[[str], None] = print,
) -> Throughput:
    mix = publish_mix(broker, settings, events, log)
    raw = raw_consumer(broker, settings, events, workdir)
    log(f"throughput: raw aiokafka {raw.per_second:,.0f} events/s")
    bare = faust_baseline(
        broker, settings, events, workdir, "bare", "bare Faust agent (iterate only)"
    )
    log(f"throughput: bare Faust {bare.per_second:,.0f} events/s")
    naive = faust_baseline(
        broker, settings, events, workdir, "table", "naive Faust agent (windowed table += 1)"
    )
    log(f"throughput: naive table {naive.per_second:,.0f} events/s")
    worker = salespulse_worker(broker, settings, config, events, workdir)
    log(f"throughput: salespulse worker {worker.rate.per_second:,.0f} events/s")
    tried = []
    for env in variants:
        tried.append(salespulse_worker(broker, settings, config, events, workdir, env))
        log(f"throughput: {tried[-1].rate.name} {tried[-1].rate.per_second:,.0f} events/s")
    peer: Rate | None = None
    missing = ""
    if quix:
        try:
            peer = quix_consumer(broker, settings, events, workdir, log)
            log(f"throughput: Quix Streams {peer.per_second:,.0f} events/s")
        except quix_peer.QuixUnavailableError as exc:
            missing = str(exc)
            log(f"throughput: Quix Streams peer skipped: {missing}")
    return Throughput(
        events=events,
        managers=managers,
        partitions=settings.partitions,
        mix=mix,
        raw=raw,
        bare=bare,
        naive=naive,
        worker=worker.rate,
        changelog_records=worker.changelog_records,
        scrape_seconds=worker.scrape.seconds,
        scrape_bytes=len(worker.scrape.body),
        outcomes=worker.outcomes,
        variants=tried,
        quix=peer,
        quix_missing=missing,
    )


def parse_variant(text: str) -> dict[str, str]:
    """``batch_max_seconds=1,batch_max_events=5000`` -> SALESPULSE_* environment."""
    env = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if not name or not value:
            raise ValueError(f"a variant is NAME=VALUE[,NAME=VALUE]; got {text!r}")
        env[f"SALESPULSE_{name.strip().upper()}"] = value.strip()
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--managers", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        type=parse_variant,
        help="also run the worker with these settings, e.g. batch_max_seconds=1 (repeatable)",
    )
    parser.add_argument(
        "--no-quix",
        dest="quix",
        action="store_false",
        help="leave out the Quix Streams peer (and the making of its own environment)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="salespulse-bench-") as tmp, EmbeddedBroker() as broker:
        workdir = Path(tmp)
        config = workload.write_company(
            workdir / "company.toml", workload.manager_ids(args.managers)
        )
        settings = workload.company_settings(config, broker.bootstrap, args.partitions)
        result = run(
            broker,
            workdir,
            config,
            settings,
            events=args.events,
            managers=args.managers,
            variants=args.variant,
            quix=args.quix,
        )
    print("\n".join(result.report()))


if __name__ == "__main__":
    main()
