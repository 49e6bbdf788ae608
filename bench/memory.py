"""Memory and recovery: worker RSS and restart-to-ready time as the state grows.

Keys are counted as the README counts state: managers x open calendar periods
(day, week, month), open deals, open tasks, and remembered event ids. A size
of K keys is built from K/100 managers with 50 open items each (25 deals
created and 25 tasks created, due days ahead so none becomes overdue), so

    keys = managers x 3 periods + 50 open items x managers + 50 event ids x managers
         ~ 103 x managers   (10k keys: 100 managers, 100k: 1,000, 1M: 10,000
                             managers with 500,000 open deals and tasks).

The events are published round robin over the managers (one event per
manager in turn, as a live floor interleaves them), stamped over the last
hour; deals are spread over the open stages of the funnel with the label
values of the demo company. A fresh worker consumes them (the build), then:

- RSS after the build, idle, once the worker has given freed memory back
  (VmRSS of /proc/<pid>/status, read once it has settled: the peak of one trim
  cycle of streams.heap within 2% of the one before, after 2 to 8 cycles);
- one /metrics scrape (its time and size; VmHWM is the peak RSS with it);
- SIGTERM, a new worker with the same app id: process start until /readyz
  answers 200 (polled every 20 ms), which includes restoring the state
  changelog, and RSS once ready (settled the same way); a scrape then
  checks the restored counts.
  A restart not ready after READY_LIMIT_SECONDS (180 s) is reported with the
  restore progress from Faust's recovery log instead of being waited for.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench import offsets, procs, workload
from salespulse.broker import EmbeddedBroker
from salespulse.settings import DEFAULT_STAGES, Settings
from salespulse.topics import ensure_topics
from streams.app import TRIM_INTERVAL_SECONDS

OPEN_ITEMS = 50  # per manager: half deals, half tasks
PERIODS = 3
TARGET_RSS_MIB = 300
TARGET_READY_SECONDS = 30
TARGET_KEYS = 1_000_000
READY_LIMIT_SECONDS = 180.0  # a restart still restoring then is reported as such
PRODUCTS = ("crm-starter", "crm-pro", "analytics", "telephony", "implementation")
CHANNELS = ("website", "referral", "cold-outreach", "event", "partner")
SEGMENTS = ("smb", "mid-market", "enterprise")
TASK_TYPES = ("call", "email", "meeting", "proposal")
OPEN_STAGES = DEFAULT_STAGES[:-1]  # all but "won"


@dataclass
class MemoryPoint:
    keys: int
    managers: int
    events: int
    build_seconds: float
    build_rate: float
    rss_empty: float
    rss_built: float
    scrape_seconds: float | None
    scrape_bytes: int
    hwm_with_scrape: float
    ready_seconds: float | None  # None: not ready within READY_LIMIT_SECONDS
    rss_restored: float
    hwm_restore: float
    changelog_records: int
    broker_rss: float
    restored_ok: str
    stop_code: int | None
    restore_note: str = ""
    variant: str = ""  # the worker's changed settings, NAME=VALUE (bench.run --variant)


def managers_for(keys: int) -> int:
    """Managers for a nominal size: 1 per 100 keys (each holds about 103)."""
    return max(1, keys // 100)


def state_events(settings: Settings, managers: list[str]) -> Iterator[workload.Message]:
    """OPEN_ITEMS open deals and tasks per manager, round robin, over the last hour."""
    total = len(managers) * OPEN_ITEMS
    now = datetime.now(UTC)
    start = now - timedelta(hours=1)
    step = 3600.0 / total
    index = 0
    for item in range(OPEN_ITEMS):
        for number, manager in enumerate(managers):
            at = start + timedelta(seconds=index * step)
            index += 1
            spread = item * 7 + number
            event: dict[str, object] = {
                "event_id": f"mem-{manager}-{item}",
                "occurred_at": at.isoformat(),
                "manager_id": manager,
                "source": "bench",
            }
            if item % 2 == 0:
                event.update(
                    type="deal.created",
                    deal_id=f"D-{manager}-{item}",
                    pipeline="default",
                    stage=OPEN_STAGES[spread % len(OPEN_STAGES)],
                    amount=float(1000 + 100 * (spread % 50)),
                    product=PRODUCTS[spread % len(PRODUCTS)],
                    channel=CHANNELS[(spread // 5) % len(CHANNELS)],
                    segment=SEGMENTS[spread % len(SEGMENTS)],
                )
                topic = settings.topic_deals
            else:
                due = now + timedelta(days=3 + spread % 7)
                event.update(
                    type="task.created",
                    task_id=f"T-{manager}-{item}",
                    task_type=TASK_TYPES[spread % len(TASK_TYPES)],
                    due_at=due.isoformat(),
                    deal_id=f"D-{manager}-{item - 1}",
                )
                topic = settings.topic_tasks
            yield workload.Message(topic, manager.encode(), orjson.dumps(event))


def _open_counts(scrape: procs.Scrape) -> tuple[float, float, float]:
    return (
        procs.sum_samples(scrape.body, b"salespulse_events_total"),
        procs.sum_samples(scrape.body, b"salespulse_open_deals"),
        procs.sum_samples(scrape.body, b"salespulse_open_tasks"),
    )


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _settled_rss_mib(pid: int) -> float:
    """RSS once the worker's memory has settled: the highest RSS of a trim cycle
    within 2% of the cycle before's, after two cycles at least and eight at most.

    The worker returns freed heap to the system every TRIM_INTERVAL_SECONDS
    (streams.heap); RSS read right after a build or a restore still holds the
    batches' and the restore's garbage, which the next trim releases. Items
    nothing used for a whole interval are compressed at the trim after it
    (streams.items). Deals whose time in their stage passes an age bound are
    touched by the sweep as the wall clock moves on, so after a build of deals
    created within the last hour the state takes a few cycles to settle.
    """
    cycle_peaks: list[float] = []
    for cycle in range(8):
        deadline = time.monotonic() + TRIM_INTERVAL_SECONDS
        peak = procs.rss_mib(pid)
        while time.monotonic() < deadline:
            time.sleep(0.5)  # sampling the process, not waiting for it
            peak = max(peak, procs.rss_mib(pid))
        cycle_peaks.append(peak)
        if cycle >= 2 and abs(peak - cycle_peaks[-2]) <= 0.02 * cycle_peaks[-2]:
            break
    return procs.rss_mib(pid)


def measure(
    keys: int,
    workdir: Path,
    partitions: int,
    log: object = print,
    keep_logs: Path | None = None,
    env: dict[str, str] | None = None,
) -> MemoryPoint:
    """*keep_logs*: where the log of a worker that did not stop cleanly is copied; *env*:
    the worker's changed settings (SALESPULSE_* variables, bench.run --variant)."""
    assert callable(log)
    variant = variant_name(env)
    managers = workload.manager_ids(managers_for(keys))
    events = len(managers) * OPEN_ITEMS
    with EmbeddedBroker() as broker:
        config = workload.write_company(workdir / f"memory-{keys}.toml", managers)
        settings = workload.company_settings(config, broker.bootstrap, partitions)
        asyncio.run(ensure_topics(settings))
        asyncio.run(workload.publish(broker.bootstrap, state_events(settings, managers)))
        app_id = f"bench-memory-{keys}"
        worker = procs.Worker(
            broker.url, config, workdir, app_id=app_id, partitions=partitions, extra_env=env
        )
        worker.start()
        try:
            worker.wait_ready(180)
            rss_empty = procs.rss_mib(worker.pid)
            tps = offsets.partitions_of(settings.source_topics, partitions)
            started = time.perf_counter()
            seen = asyncio.run(
                offsets.follow_commits(
                    broker.bootstrap,
                    app_id,
                    tps,
                    events,
                    lambda: procs.cpu_seconds(worker.pid),
                    interval=0.2,
                    limit_seconds=1200,
                )
            )
            build_seconds = seen[-1].at - started
            rss_built = _settled_rss_mib(worker.pid)
            log(
                f"memory{variant and ' ' + variant}: {keys:,} keys built from {events:,} "
                f"events in {build_seconds:.0f} s, "
                f"RSS {rss_built:.0f} MiB; scraping"
            )
            try:
                scrape: procs.Scrape | None = worker.scrape()
            except OSError:
                scrape = None
            hwm_with_scrape = _hwm_mib(worker.pid)
        finally:
            stop_code = worker.stop(timeout=120)
            if stop_code not in (0, None) and keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                shutil.copy(worker.log_path, keep_logs / worker.log_path.name)
        changelog = asyncio.run(
            offsets.end_offsets(
                broker.bootstrap,
                offsets.partitions_of([f"{app_id}-state-changelog"], partitions),
            )
        )
        broker_rss = procs.rss_mib(broker.process.pid) if broker.process else float("nan")
        worker.start()
        ready_seconds: float | None = None
        restore_note = ""
        try:
            try:
                ready_seconds = worker.wait_ready(READY_LIMIT_SECONDS)
            except TimeoutError:
                restore_note = _restore_progress(worker, sum(changelog.values()))
            hwm_restore = _hwm_mib(worker.pid)
            rss_restored = _settled_rss_mib(worker.pid)
            if ready_seconds is None:
                restored_ok = "not ready"
                log(f"memory: not ready after {READY_LIMIT_SECONDS:.0f} s: {restore_note}")
            else:
                log(f"memory: restarted, ready after {ready_seconds:.1f} s; checking the counts")
                restored_ok = _check_restored(worker, events)
        finally:
            worker.stop(timeout=120)
    return MemoryPoint(
        keys=len(managers) * (PERIODS + 2 * OPEN_ITEMS),
        managers=len(managers),
        events=events,
        build_seconds=build_seconds,
        build_rate=events / build_seconds,
        rss_empty=rss_empty,
        rss_built=rss_built,
        scrape_seconds=scrape.seconds if scrape else None,
        scrape_bytes=len(scrape.body) if scrape else 0,
        hwm_with_scrape=hwm_with_scrape,
        ready_seconds=ready_seconds,
        rss_restored=rss_restored,
        hwm_restore=hwm_restore,
        changelog_records=sum(changelog.values()),
        broker_rss=broker_rss,
        restored_ok=restored_ok,
        stop_code=stop_code,
        restore_note=restore_note,
        variant=variant,
    )


def variant_name(env: dict[str, str] | None) -> str:
    return " ".join(f"{k.removeprefix('SALESPULSE_')}={v}" for k, v in (env or {}).items())


def _check_restored(worker: procs.Worker, events: int) -> str:
    """Whether the restored state counts every event and every open deal and task."""
    try:
        counted, deals, tasks = _open_counts(worker.scrape())
    except OSError as exc:
        return f"unchecked ({exc})"
    expected_deals = (OPEN_ITEMS + 1) // 2 * (events // OPEN_ITEMS)
    if (counted, deals, tasks) == (events, expected_deals, events - expected_deals):
        return "yes"
    return f"NO: events {counted:.0f}, open deals {deals:.0f}, open tasks {tasks:.0f}"


def _restore_progress(worker: procs.Worker, records: int) -> str:
    """What Faust's recovery log says of a restore still running."""
    text = worker.log_path.read_text(errors="replace")
    found = re.findall(r"estimated time remaining ([0-9.]+ \w+) \(total remaining=(\d+)\)", text)
    if not found:
        return "no recovery progress logged"
    estimate, remaining = found[-1]
    done = records - int(remaining)
    return (
        f"{done:,} of {records:,} changelog records restored "
        f"({done / READY_LIMIT_SECONDS:,.0f}/s), Faust estimates {estimate} more"
    )


def report(points: list[MemoryPoint]) -> list[str]:
    variant = points[0].variant if points else ""
    lines = [
        "MEMORY AND RECOVERY: keys = managers x 3 open periods + open deals + open tasks "
        "+ remembered event ids" + (f"; worker with {variant}" if variant else ""),
        f"  {'keys':>10} {'managers':>8} {'events':>8} {'build ev/s':>10} {'RSS empty':>9} "
        f"{'RSS built':>9} {'peak w/ scrape':>14} {'scrape':>12} {'changelog':>10} "
        f"{'ready':>7} {'RSS ready':>9} {'restored':>8}",
    ]
    for p in points:
        scrape = (
            f"{p.scrape_seconds:5.1f}s {p.scrape_bytes / 1e6:4.0f}MB"
            if p.scrape_seconds is not None
            else "failed"
        )
        ready = (
            f"{p.ready_seconds:6.1f}s"
            if p.ready_seconds is not None
            else f">{READY_LIMIT_SECONDS:.0f}s"
        )
        lines.append(
            f"  {p.keys:>10,} {p.managers:>8,} {p.events:>8,} {p.build_rate:>10,.0f} "
            f"{p.rss_empty:>7.0f}Mi {p.rss_built:>7.0f}Mi {p.hwm_with_scrape:>12.0f}Mi "
            f"{scrape:>12} {p.changelog_records:>10,} {ready:>7} "
            f"{p.rss_restored:>7.0f}Mi {p.restored_ok:>8}"
        )
    if len(points) > 1:
        first, last = points[0], points[-1]
        per_key = (last.rss_built - first.rss_built) * 1024 * 1024 / (last.keys - first.keys)
        lines.append(
            f"  growth: about {per_key:,.0f} bytes of RSS per key; changelog records per event "
            + ", ".join(f"{p.changelog_records / p.events:.2f}" for p in points)
            + "; broker RSS "
            + ", ".join(f"{p.broker_rss:.0f}" for p in points)
            + " MiB"
        )
    for p in points:
        if p.restore_note:
            lines.append(f"  {p.keys:,} keys, restart: {p.restore_note}")
        if p.stop_code not in (0, None):
            lines.append(
                f"  {p.keys:,} keys: the built worker exited with {p.stop_code} on SIGTERM "
                "(its log is copied into the --out directory)"
            )
    largest = max(points, key=lambda p: p.keys)
    if largest.keys >= TARGET_KEYS:
        lines.append(
            f"  targets at {largest.managers:,} managers, {largest.events:,} open deals and tasks: "
            f"RSS <= {TARGET_RSS_MIB} MiB: "
            f"{'met' if largest.rss_built <= TARGET_RSS_MIB else 'NOT MET'} "
            f"({largest.rss_built:.0f} MiB built, {largest.rss_restored:.0f} MiB restored, "
            f"peak {max(largest.hwm_with_scrape, largest.hwm_restore):.0f} MiB); "
            f"restart to ready <= {TARGET_READY_SECONDS} s: "
            + (
                f"{'met' if largest.ready_seconds <= TARGET_READY_SECONDS else 'NOT MET'} "
                f"({largest.ready_seconds:.1f} s)"
                if largest.ready_seconds is not None
                else f"NOT MET (not ready after {READY_LIMIT_SECONDS:.0f} s)"
            )
        )
    return lines
