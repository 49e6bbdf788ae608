"""Where the worker's time goes: py-spy on the worker while it consumes at full speed.

py-spy (``.venv/bin/pip install py-spy``; not a project dependency) samples
the running ``salespulse worker`` 100 times a second, idle time included
(``--idle``), and writes collapsed stacks (``--format raw``; speedscope.app
and flamegraph.pl open the file as it is). The summary counts the worker's
main thread, which runs the event loop with all of salespulse and Faust on
it; Faust's aiokafka consumer thread, which mostly waits, is reported apart.
Shares are of the main thread's busy samples (those not waiting in epoll).
"""

from __future__ import annotations

import asyncio
import collections
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition

from bench import offsets, procs
from salespulse.broker import EmbeddedBroker
from salespulse.settings import Settings

PRODUCT_PREFIXES = ("streams/", "metrics/", "schemas/", "salespulse/")
IDLE_LEAVES = ("EpollSelector.select (selectors.py)", "select (selectors.py)")

# Coarse phases, by the first matching frame anywhere in the stack.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "salespulse: Processor.process (parse, validate, dedupe, aggregate)",
        ("Processor.process (streams/processor.py)",),
    ),
    (
        "salespulse: ChangelogWriter.write (encode records, hand to producer)",
        ("ChangelogWriter.write (streams/changelog.py)",),
    ),
    ("salespulse: /metrics render", ("metrics/", "generate_latest")),
    ("salespulse: deadline timer", ("settle_deadlines",)),
    ("aiokafka producer: building and sending produce requests", ("aiokafka/producer/",)),
    (
        "Faust: fetch, deliver, stream iteration, acks",
        (
            "faust/transport/consumer.py",
            "faust/transport/conductor.py",
            "faust/streams.py",
            "faust/channels.py",
            "faust/agents/",
            "aiokafka/consumer/",
        ),
    ),
)


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


@dataclass
class Summary:
    seconds: float
    samples_main: int
    busy_main: int
    samples_other: int
    busy_other: int
    own: list[tuple[str, int]]
    inclusive_product: list[tuple[str, int]]
    phases: list[tuple[str, int]]
    raw_path: Path
    notes: list[str] = field(default_factory=list)

    def report(self, top: int = 10) -> list[str]:
        busy = max(1, self.busy_main)
        lines = [
            f"PROFILE: py-spy, 100 Hz for {self.seconds:.0f} s on the worker consuming at full "
            f"speed; collapsed stacks in {self.raw_path}",
            f"  main thread busy {self.busy_main / max(1, self.samples_main):.0%} of its samples; "
            f"Faust's consumer thread busy {self.busy_other / max(1, self.samples_other):.0%}",
            "  where the main thread's busy time goes:",
        ]
        lines += [f"    {n / busy:6.1%}  {name}" for name, n in self.phases]
        lines.append(f"  top {top} functions by own time (share of busy main-thread samples):")
        lines += [f"    {n / busy:6.1%}  {name}" for name, n in self.own[:top]]
        lines.append("  salespulse functions by inclusive time:")
        lines += [f"    {n / busy:6.1%}  {name}" for name, n in self.inclusive_product[:15]]
        lines += [f"  note: {note}" for note in self.notes]
        return lines


def _frames(stack: str) -> list[str]:
    return [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]


def summarize(raw: Path, seconds: float) -> Summary:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    phases: collections.Counter[str] = collections.Counter()
    samples_main = busy_main = samples_other = busy_other = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count_text = line.rsplit(" ", 1)
        count = int(count_text)
        frames = _frames(stack)
        idle = frames[-1] in IDLE_LEAVES
        main = any("salespulse/__main__.py" in frame for frame in frames[:4])
        if not main:
            samples_other += count
            busy_other += 0 if idle else count
            continue
        samples_main += count
        if idle:
            continue
        busy_main += count
        own[frames[-1]] += count
        for frame in set(frames):
            if any(f"({prefix}" in frame for prefix in PRODUCT_PREFIXES) and not frame.startswith(
                ("<module>", "main ", "_worker ", "run_worker ", "_run ")
            ):
                inclusive[frame] += count
        for name, needles in PHASES:
            if any(needle in frame for frame in frames for needle in needles):
                phases[name] += count
                break
        else:
            phases["other: asyncio event loop, mode, aiohttp, ..."] += count
    return Summary(
        seconds=seconds,
        samples_main=samples_main,
        busy_main=busy_main,
        samples_other=samples_other,
        busy_other=busy_other,
        own=own.most_common(),
        inclusive_product=inclusive.most_common(),
        phases=phases.most_common(),
        raw_path=raw,
    )


def run(
    broker: EmbeddedBroker,
    settings: Settings,
    config: Path,
    workdir: Path,
    out: Path,
    *,
    seconds: float,
    events: int,
) -> Summary | None:
    """Profile a fresh worker consuming the topics already on *broker* from the start."""
    spy = py_spy()
    if spy is None:
        print("profile: py-spy not found; install it with .venv/bin/pip install py-spy")
        return None
    raw = out / "profile-worker.txt"
    worker = procs.Worker(
        broker.url,
        config,
        workdir,
        app_id=f"bench-profile-{time.time_ns()}",
        partitions=settings.partitions,
    )
    worker.start()
    try:
        worker.wait_ready(120)
        time.sleep(1.0)  # into the steady state
        subprocess.run(
            [
                spy,
                "record",
                "--pid",
                str(worker.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "100",
                "--idle",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=seconds + 60,
        )
        worker.alive()
        tps = offsets.partitions_of(settings.source_topics, settings.partitions)
        done = asyncio.run(_committed(broker.bootstrap, worker.app_id, tps))
    finally:
        worker.stop()
    summary = summarize(raw, seconds)
    if done >= events:
        summary.notes.append("the worker caught up before the profile ended: give it more --events")
    return summary


async def _committed(bootstrap: str, group: str, tps: list[TopicPartition]) -> int:
    admin = offsets.admin_client(bootstrap)
    await admin.start()
    try:
        return await offsets.committed(admin, group, tps)
    finally:
        await admin.close()
