"""History for the rule-cost test: a scrape of a month-like company, backfilled into a TSDB.

The exposition of a simulated month is the "now" of every series. Every series
gets the last hour (and ``AHEAD`` into the future, so the rules have fresh data
for the whole test) at the 15 s scrape interval. The raw series that some rule
reads through a range or an offset also get history, at the same 15 s: *depth*
of it (7 days, or less when a sample budget says so), and the window each read
reaches (an ``offset 30d`` reads around 30 days ago). Counters climb to their
current value over the month (in 15 minute steps), gauges hold theirs.

The text (OpenMetrics, 80 to 150 bytes a sample) is written a time slice at a
time and handed to ``promtool tsdb create-blocks-from openmetrics``, which needs
a regular file (it mmaps its input) and scans all of it once for its time range
and once more per block it writes. Each piece is deleted once ingested, so the
disk holds at most two pieces besides the blocks; two are ingested at once (one
promtool each; writing the text holds the GIL, promtool does not). Slicing by
time rather than by manager keeps the blocks from overlapping: Prometheus would
merge overlapping blocks a minute after it starts, while the rules are measured.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.promql import Read

STEP = 15  # seconds between samples, the scrape interval
RECENT = timedelta(hours=1)  # every series
AHEAD = timedelta(minutes=10)  # past "now", so the rules see fresh samples while the test runs
LOOKBACK = timedelta(minutes=5)  # Prometheus' default lookback delta
MAX_HISTORY = timedelta(days=7)  # the deepest range read that is backfilled in full
MONTH = timedelta(days=30)  # counters climb from 0 over this long
COUNTER_STEP = 900  # seconds a counter holds each value

# promtool rounds --max-block-duration down to one of the TSDB's block ranges,
# 2h * 3^n (so 192h gives 162h blocks, and a 7-day history always spans two of
# them, i.e. three passes over the input instead of two). This is the largest.
MAX_BLOCK_DURATION = "39366h"


@dataclass(frozen=True, slots=True)
class ExposedSeries:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    counter: bool

    @property
    def text(self) -> str:
        """The series as the OpenMetrics text writes it."""
        if not self.labels:
            return self.name
        inner = ",".join(f'{key}="{_escape(value)}"' for key, value in self.labels)
        return f"{self.name}{{{inner}}}"

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def parse_exposition(text: str) -> list[ExposedSeries]:
    """Every series of a scrape; counters are counters and histograms' (and summaries')
    _bucket, _sum and _count series."""
    series = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            counter = family.type == "counter" or (
                family.type in ("histogram", "summary")
                and sample.name.endswith(("_bucket", "_sum", "_count"))
            )
            labels = tuple(sorted(sample.labels.items()))
            series.append(ExposedSeries(sample.name, labels, float(sample.value), counter))
    return series


# -- which samples each series gets ---------------------------------------------------

Window = tuple[int, int]  # [first, last) step index relative to now; step k is at now + 15 k


def _steps(delta: timedelta, *, up: bool) -> int:
    value = delta.total_seconds() / STEP
    return math.ceil(value) if up else math.floor(value)


def _merge(windows: Iterable[Window]) -> list[Window]:
    merged: list[Window] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass
class Plan:
    """The windows of samples each series gets, for a history depth *depth*."""

    series: list[ExposedSeries]
    windows: list[list[Window]]
    history: list[bool]  # whether a range or offset read selects the series
    depth: timedelta  # how far back a range read is backfilled (at most MAX_HISTORY)

    @property
    def samples(self) -> int:
        return sum(end - start for windows in self.windows for start, end in windows)

    @property
    def history_series(self) -> int:
        return sum(self.history)

    @property
    def history_samples(self) -> int:
        """Samples of the history series beyond the last hour everyone gets."""
        recent = _steps(RECENT, up=True) + _steps(AHEAD, up=True) + 1
        return sum(
            sum(end - start for start, end in windows) - recent
            for windows, wanted in zip(self.windows, self.history, strict=True)
            if wanted
        )


def matching_reads(series: Sequence[ExposedSeries], reads: Sequence[Read]) -> list[list[Read]]:
    """For each series, the reads that select it."""
    return [
        [read for read in reads if read.selector.matches(one.name, dict(one.labels))]
        for one in series
    ]


def plan(
    series: Sequence[ExposedSeries], matches: Sequence[Sequence[Read]], depth: timedelta
) -> Plan:
    """Windows for every series: the last hour; for a series that some read selects,
    *depth* of history, and what each such read reaches at any time of the test (its
    offset, its range up to *depth*: an `offset 30d` gets the window 30 days back)."""
    recent: Window = (-_steps(RECENT, up=True), _steps(AHEAD, up=True) + 1)
    depth = min(depth, MAX_HISTORY)
    all_windows, history = [], []
    for reads in matches:
        windows = [recent]
        if reads:
            windows.append((-_steps(depth + LOOKBACK, up=True), recent[1]))
        for read in reads:
            reach = read.offset + min(read.range, depth) + LOOKBACK
            windows.append((-_steps(reach, up=True), _steps(AHEAD - read.offset, up=True) + 1))
        all_windows.append(_merge(windows))
        history.append(bool(reads))
    return Plan(list(series), all_windows, history, depth)


def plan_within(series: Sequence[ExposedSeries], reads: Sequence[Read], budget: int) -> Plan:
    """The deepest plan (up to MAX_HISTORY) whose history series get at most *budget*
    samples beyond the last hour; the depth is searched to the quarter hour."""
    matches = matching_reads(series, reads)
    best = plan(series, matches, MAX_HISTORY)
    if best.history_samples <= budget:
        return best
    low, high = 0, int(MAX_HISTORY.total_seconds() // 900)  # quarter hours
    best = plan(series, matches, timedelta(0))
    while low < high:
        middle = (low + high + 1) // 2
        candidate = plan(series, matches, timedelta(seconds=middle * 900))
        if candidate.history_samples <= budget:
            best, low = candidate, middle
        else:
            high = middle - 1
    return best


# -- writing and ingesting ------------------------------------------------------------


def _number(value: float) -> str:
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


class _Stamps:
    """The timestamp lines of each window, made once and shared by every series."""

    def __init__(self, now: int) -> None:
        self.now = now
        self._cache: dict[Window, list[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, window: Window) -> list[str]:
        with self._lock:
            found = self._cache.get(window)
            if found is None:
                start, end = window
                found = [f"{self.now + STEP * k}\n" for k in range(start, end)]
                self._cache[window] = found
            return found


def _runs(one: ExposedSeries, window: Window) -> Iterator[tuple[int, int, float]]:
    """(first, last, value) runs of steps within *window* that hold one value."""
    start, end = window
    if not one.counter:
        yield start, end, one.value
        return
    integral = one.value == int(one.value)
    per_step = COUNTER_STEP // STEP
    run_start, run_value = start, None
    position = start
    while position < end:
        chunk_end = min(end, (position // per_step + 1) * per_step)
        age = max(0, -position * STEP)
        age = math.ceil(age / COUNTER_STEP) * COUNTER_STEP
        fraction = max(0.0, 1.0 - age / MONTH.total_seconds())
        value = one.value * fraction
        value = float(math.floor(value)) if integral else value
        if run_value is None:
            run_value = value
        elif value != run_value:
            yield run_start, position, run_value
            run_start, run_value = position, value
        position = chunk_end
    if run_value is not None:
        yield run_start, end, run_value


def slices(plan_: Plan, target: int) -> list[Window]:
    """Consecutive, disjoint step ranges holding about *target* samples each."""
    counts: dict[int, int] = defaultdict(int)
    for windows in plan_.windows:
        for start, end in windows:
            counts[start] += 1
            counts[end] -= 1
    cuts: list[Window] = []
    marks = sorted(counts)
    if not marks:
        return cuts
    first, held, live = marks[0], 0, 0
    for mark, following in itertools.pairwise(marks):
        live += counts[mark]
        position = mark
        while live and held + live * (following - position) >= target:
            cut = position + max(1, (target - held) // live)
            cuts.append((first, cut))
            first, held, position = cut, 0, cut
        held += live * (following - position)
    cuts.append((first, marks[-1]))
    return cuts


def write_piece(path: Path, plan_: Plan, piece: Window, stamps: _Stamps) -> tuple[int, int]:
    """Writes every sample of the plan within the steps *piece*, as OpenMetrics;
    (samples, bytes)."""
    samples = 0
    low, high = piece
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for one, windows in zip(plan_.series, plan_.windows, strict=True):
            text = one.text
            for start, end in windows:
                window = (max(start, low), min(end, high))
                if window[0] >= window[1]:
                    continue
                lines = stamps(window)
                for first, last, value in _runs(one, window):
                    prefix = f"{text} {_number(value)} "
                    out.write(prefix)
                    out.write(prefix.join(lines[first - window[0] : last - window[0]]))
                    samples += last - first
        out.write("# EOF\n")
    return samples, path.stat().st_size


def _tree_size(path: Path) -> int:
    """Bytes in the files under *path*, while promtool (the other piece's) renames in it."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(folder, name)).st_size
    return total


@dataclass
class Backfill:
    series: int = 0
    samples: int = 0
    pieces: int = 0
    bytes_written: int = 0
    generate_seconds: float = 0.0  # writing the text, summed over pieces
    promtool_seconds: float = 0.0  # summed over pieces (two run at once)
    wall_seconds: float = 0.0
    peak_disk: int = 0  # pieces on disk plus the blocks, at the fullest
    blocks_bytes: int = 0
    piece_sizes: list[int] = field(default_factory=list)

    def summary(self) -> str:
        mib = 1024 * 1024
        return (
            f"backfilled {self.series} series, {self.samples:,} samples in {self.pieces} pieces "
            f"({self.bytes_written / mib:,.0f} MiB of text, "
            f"{self.bytes_written / max(self.samples, 1):.0f} bytes a sample, pieces "
            f"{min(self.piece_sizes, default=0) / mib:,.0f}-"
            f"{max(self.piece_sizes, default=0) / mib:,.0f} MiB);\n"
            f"generating the text {self.generate_seconds:.1f} s, promtool "
            f"{self.promtool_seconds:.1f} s "
            f"({self.promtool_seconds / max(self.samples / 1e6, 1e-9):.2f} s per million "
            f"samples), {self.wall_seconds:.1f} s wall with two at once; blocks "
            f"{self.blocks_bytes / mib:,.1f} MiB, peak disk {self.peak_disk / mib:,.0f} MiB"
        )


def backfill(
    plan_: Plan,
    now: int,
    data: Path,
    workdir: Path,
    *,
    piece_samples: int = 2_000_000,
    workers: int = 2,
) -> Backfill:
    """Writes the plan into TSDB blocks in *data*, a time slice of every series a piece,
    so that the blocks do not overlap (Prometheus would merge overlapping blocks a
    minute after it starts, while the rules are measured)."""
    promtool = shutil.which("promtool") or "promtool"
    pieces = slices(plan_, piece_samples)
    stamps = _Stamps(now)
    data.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    result = Backfill(series=len(plan_.series), pieces=len(pieces))
    lock = threading.Lock()
    live: dict[Path, int] = {}

    def note_disk() -> None:
        with lock:
            result.peak_disk = max(result.peak_disk, _tree_size(data) + sum(live.values()))

    def ingest(number: int, piece: Window) -> None:
        path = workdir / f"piece-{number:04d}.om"
        started = time.monotonic()
        samples, size = write_piece(path, plan_, piece, stamps)
        written = time.monotonic()
        with lock:
            live[path] = size
        note_disk()
        completed = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics",
             f"--max-block-duration={MAX_BLOCK_DURATION}", "--quiet", str(path), str(data)],
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        ingested = time.monotonic()
        note_disk()
        path.unlink()
        with lock:
            del live[path]
            result.samples += samples
            result.bytes_written += size
            result.piece_sizes.append(size)
            result.generate_seconds += written - started
            result.promtool_seconds += ingested - written
        if completed.returncode != 0:
            raise AssertionError(
                f"promtool failed on {path.name}: {completed.stdout}{completed.stderr}"
            )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(ingest, *numbered) for numbered in enumerate(pieces)]:
            future.result()
    result.wall_seconds = time.monotonic() - started
    result.blocks_bytes = _tree_size(data)
    return result
