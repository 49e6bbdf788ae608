"""Scrape: what one /metrics scrape of a month-like state costs, at 1,000 and 10,000 managers.

The state. A month of the simulated floor (salespulse.simulate.month: the
reference company, 30 days of event time ending now, at real speed) is
replayed by the real processor, in memory, for the TEMPLATE_MANAGERS (60)
managers of ``reference_settings(60)``. Replaying a month for 10,000
managers would take hours, so each size is cloned from those template
managers: each one's records (its core, and each deal, task and call day as
its own record) are encoded as a changelog write encodes them
(streams.state, streams.items) and restored into a fresh StateStore
(``StateStore.restore``) under the ids of ``reference_settings(size)``'s
roster, the settings the scrape renders with: clone *i* from template
manager *i* mod 60, on the partition its id maps to
(schemas.partitioning.Placement). Every clone so holds a real manager's
month. As in a restarted worker after its first scrape and two trim cycles,
the cores are decoded, the resting items compressed and freed memory given
back (``streams.heap``), every CLONE_BATCH managers. Managers repeat every
60 in each family, farther apart than gzip's 32 KiB window, so the
repetition does not flatter the compression.

The scrape. ``metrics.server.make_web_app`` with
``metrics.exposition.StateExposition(settings).chunks(...)`` as the state and
an empty CollectorRegistry, served by aiohttp on 127.0.0.1 in this process;
the client is a separate process (stdlib http.client, on the other core),
timing from sending the request to the last byte, and counting the series
and a CRC-32 of the text as it reads (the gzip body decompressed after the
clock stops). One untimed render first counts the series in-process (and, at
the first size, compresses the text at SWEEP_LEVELS for comparison). Then
SCRAPE_REPEAT scrapes without and with ``Accept-Encoding: gzip``,
alternating; the median is reported. Meanwhile a probe on the event loop
sleeps LOOP_PROBE_SECONDS at a time and records how late it wakes: the
longest the scrape held the loop (between chunks, a worker's batches run).
Nothing depends on the exposition's family names.

Targets: one scrape at most 0.5 s at 1,000 managers and 5 s at 10,000, on
this machine (TARGET_SECONDS).

    .venv/bin/python -m bench.run --sections scrape [--scrape-managers 1000,10000]
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from metrics.exposition import StateExposition
from metrics.server import GZIP_LEVEL, make_web_app
from salespulse.settings import Settings
from salespulse.simulate.month import month_events, reference_settings, replay
from schemas.partitioning import Placement
from streams.heap import release_free_memory
from streams.items import Name, record_of
from streams.state import ManagerState, encode_core, item_key, manager_key
from streams.store import StateStore

HOST = "127.0.0.1"
TEMPLATE_MANAGERS = 60
MONTH_DAYS = 30.0
SCRAPE_REPEAT = 3
TARGET_SECONDS = {1_000: 0.5, 10_000: 5.0}
LOOP_PROBE_SECONDS = 0.005
CLIENT_TIMEOUT_SECONDS = 600.0
SWEEP_LEVELS = (1, 6, 9)  # gzip levels compared in-process on the smallest size
CLONE_BATCH = 1000  # managers cloned between two trims

# The scrape client, run as `python -c CLIENT host port encoding`: stdlib only, so it
# starts in tens of milliseconds, before its clock starts.
CLIENT = r"""
import http.client, json, sys, time, zlib
host, port, encoding = sys.argv[1], int(sys.argv[2]), sys.argv[3]
connection = http.client.HTTPConnection(host, port, timeout=600)
started = time.perf_counter()
connection.request("GET", "/metrics", headers={"Accept-Encoding": encoding})
response = connection.getresponse()
first = time.perf_counter() - started
wire = 0
crc = 0
lines = 0
comments = 0
text = 0
previous = b"\n"
parts = []
zipped = response.getheader("Content-Encoding") == "gzip"


def count(data):
    global crc, lines, comments, text, previous
    crc = zlib.crc32(data, crc)
    text += len(data)
    lines += data.count(b"\n")
    comments += data.count(b"\n#") + (previous == b"\n" and data[:1] == b"#")
    previous = data[-1:]


while True:
    data = response.read1(1 << 20)
    if not data:
        break
    wire += len(data)
    if zipped:
        parts.append(data)
    else:
        count(data)
seconds = time.perf_counter() - started
if zipped:
    stream = zlib.decompressobj(31)
    for data in parts:
        out = stream.decompress(data)
        if out:
            count(out)
    if not stream.eof or stream.unused_data:
        raise SystemExit("gzip stream incomplete or followed by garbage")
json.dump(
    {
        "status": response.status,
        "encoding": response.getheader("Content-Encoding") or "identity",
        "wire": wire,
        "text": text,
        "crc": crc,
        "series": lines - comments,
        "seconds": seconds,
        "first_byte": first,
    },
    sys.stdout,
)
"""

# -- the state ---------------------------------------------------------------------

ItemRecord = tuple[bytes, Name, bytes]  # kind, name, the item's own changelog record


@dataclass(frozen=True, slots=True)
class Template:
    """The template managers' state, each with its items' records."""

    managers: list[tuple[ManagerState, list[ItemRecord]]]
    roster: int  # the managers of reference_settings(roster), replayed
    events: int
    seconds: float  # to simulate and replay the month


def build_template(end: datetime, managers: int = TEMPLATE_MANAGERS) -> Template:
    """A month of the floor for *managers* managers, replayed; the clock is *end*."""
    started = time.monotonic()
    settings = reference_settings(managers)
    events = month_events(settings, end=end, days=MONTH_DAYS)
    count = len(events)
    store = replay(settings, events, now=end)
    del events
    return Template(template_records(store), managers, count, time.monotonic() - started)


def template_records(store: StateStore) -> list[tuple[ManagerState, list[ItemRecord]]]:
    """Each manager of *store* (decoded) with the records of its deals, tasks and call
    days as a changelog write would send them."""
    found = []
    for state in sorted(store.managers_in(), key=lambda state: state.manager_id):
        records: list[ItemRecord] = []
        for items in state.item_maps():
            for name in items.names():
                raw = items.raw(name)
                if raw is None:  # decoded just now: encode it as a write would
                    item = items.peek(name)
                    assert item is not None
                    raw = record_of(1, item)[1]
                records.append((items.kind, name, raw))
        found.append((state, records))
    return found


def clone_state(
    template: Sequence[tuple[ManagerState, list[ItemRecord]]],
    manager_ids: Sequence[str],
    partitions: int,
    *,
    seq: int = 1,
) -> StateStore:
    """A store holding, for each of *manager_ids* in turn, the records of the next template
    manager under that id and on the partition it maps to, restored as from a changelog;
    cores decoded and resting items compressed, as after a restart and two trim cycles
    (done every CLONE_BATCH managers, so the transient garbage of restoring is given back
    as it goes and the peak stays near the state's own size)."""
    placement = Placement(partitions)
    store = StateStore()
    for number, manager_id in enumerate(manager_ids, 1):
        state, records = template[(number - 1) % len(template)]
        partition = placement(manager_id.encode())
        clone = dataclasses.replace(state, manager_id=manager_id, partition=partition)
        store.restore(partition, manager_key(partition, manager_id), encode_core(clone, seq, {}))
        for kind, name, raw in records:
            store.restore(partition, item_key(kind, partition, manager_id, name), raw)
        store.manager(partition, manager_id)  # decoded, as the worker's deadline check does
        if number % CLONE_BATCH == 0 or number == len(manager_ids):
            _trim(store)
    return store


def _trim(store: StateStore) -> None:
    """What the worker's trim cycles do (streams.app, every TRIM_INTERVAL_SECONDS): items
    unused since the previous cycle are compressed, and freed memory is given back."""
    store.rest()  # marks the maps used since the last call unused ...
    store.rest()  # ... and compresses them
    release_free_memory()


# -- one size ----------------------------------------------------------------------


@dataclass
class Fetch:
    encoding: str
    wire: int
    text: int
    crc: int
    series: int
    seconds: float
    first_byte: float
    loop_stall: float
    gc_pause: float  # the longest collection of Python's cyclic garbage collector meanwhile


@dataclass
class SizePoint:
    managers: int
    build_seconds: float
    rss_built: float
    render_series: int
    render_bytes: int
    render_seconds: float  # one more render in-process, without HTTP
    fetches: list[Fetch] = field(default_factory=list)
    sweep: list[tuple[int, int, float]] = field(default_factory=list)  # level, bytes, s
    rss_peak: float = 0.0

    def of(self, encoding: str) -> list[Fetch]:
        return [fetch for fetch in self.fetches if fetch.encoding == encoding]

    def seconds(self, encoding: str) -> float:
        return statistics.median(fetch.seconds for fetch in self.of(encoding))

    def wire(self, encoding: str) -> int:
        return self.of(encoding)[-1].wire

    def consistent(self) -> bool:
        """Every scrape, plain or gzip, gave the same text as the in-process render."""
        return len({(f.text, f.crc, f.series) for f in self.fetches}) == 1 and all(
            f.text == self.render_bytes and f.series == self.render_series for f in self.fetches
        )


def _status_kib(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return float(line.split()[1])
    return 0.0


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


def peak_mib() -> float:
    return _status_kib("VmHWM") / 1024


def render_counts(
    chunks: Iterator[str], levels: Sequence[int] = ()
) -> tuple[int, int, list[tuple[int, int, float]]]:
    """Series and bytes of a render, and its text compressed at each of *levels* (one
    compressor per level fed chunk by chunk, as the endpoint does): level, bytes, seconds."""
    series = size = 0
    compressors = [zlib.compressobj(level, zlib.DEFLATED, 31) for level in levels]
    zipped = [0] * len(levels)
    spent = [0.0] * len(levels)
    for chunk in chunks:
        series += chunk.count("\n") - chunk.count("\n#") - chunk.startswith("#")
        data = chunk.encode()
        size += len(data)
        for index, compressor in enumerate(compressors):
            begun = time.perf_counter()
            zipped[index] += len(compressor.compress(data))
            spent[index] += time.perf_counter() - begun
    for index, compressor in enumerate(compressors):
        begun = time.perf_counter()
        zipped[index] += len(compressor.flush())
        spent[index] += time.perf_counter() - begun
    return series, size, list(zip(levels, zipped, spent, strict=True))


async def _loop_probe(stalls: list[float]) -> None:
    """Sleeps LOOP_PROBE_SECONDS at a time; records the longest lateness in stalls[0]."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(LOOP_PROBE_SECONDS)
        late = loop.time() - before - LOOP_PROBE_SECONDS
        if late > stalls[0]:
            stalls[0] = late


class GcPauses:
    """The longest pause of Python's cyclic garbage collector while watching."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._began = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._began)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


async def _fetch(port: int, encoding: str) -> tuple[dict[str, Any], float, float]:
    """One scrape by the client process: its result, the longest loop stall and the longest
    garbage collection meanwhile (both watched from when the client has started: forking
    it holds the loop too)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        HOST,
        str(port),
        encoding,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stalls = [0.0]
    probe = asyncio.create_task(_loop_probe(stalls))
    try:
        with GcPauses() as pauses:
            out, err = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT_SECONDS)
    finally:
        probe.cancel()
        if process.returncode is None:
            process.kill()  # by its pid
            await process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"scrape client failed: {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    if result["status"] != 200:
        raise RuntimeError(f"/metrics answered {result['status']}")
    return result, stalls[0], pauses.longest


async def _serve_and_scrape(state: Callable[[], Iterator[str]], repeat: int) -> list[Fetch]:
    app = make_web_app(CollectorRegistry(), lambda: True, state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        port = runner.addresses[0][1]
        fetches = []
        for _ in range(repeat):
            for encoding in ("identity", "gzip"):
                result, stall, pause = await _fetch(port, encoding)
                fetches.append(
                    Fetch(
                        encoding=result["encoding"],
                        wire=result["wire"],
                        text=result["text"],
                        crc=result["crc"],
                        series=result["series"],
                        seconds=result["seconds"],
                        first_byte=result["first_byte"],
                        loop_stall=stall,
                        gc_pause=pause,
                    )
                )
        return fetches
    finally:
        await runner.cleanup()


def measure(
    template: Template,
    managers: int,
    now: datetime,
    *,
    repeat: int = SCRAPE_REPEAT,
    sweep: bool = False,
    log: Callable[[str], None] = lambda text: None,
) -> SizePoint:
    settings: Settings = reference_settings(managers)
    started = time.monotonic()
    manager_ids = list(settings.managers)  # m-0001 ..., or m-00001 ... from 10,000 on
    if len(manager_ids) != managers:
        raise RuntimeError(f"reference_settings({managers}) lists {len(manager_ids)} managers")
    store = clone_state(template.managers, manager_ids, settings.partitions)
    build = time.monotonic() - started
    gc.collect()
    release_free_memory()
    built = rss_mib()
    log(f"scrape: {managers:,} managers cloned in {build:.1f} s, RSS {built:.0f} MiB")
    exposition = StateExposition(settings)

    def state() -> Iterator[str]:
        return exposition.chunks(store.records(), now)

    series, size, levels = render_counts(state(), SWEEP_LEVELS if sweep else ())
    started = time.perf_counter()
    for _ in state():
        pass
    render = time.perf_counter() - started
    point = SizePoint(managers, build, built, series, size, render, sweep=levels)
    point.fetches = asyncio.run(_serve_and_scrape(state, repeat))
    point.rss_peak = peak_mib()
    log(f"scrape: {managers:,} managers scraped {len(point.fetches)} times")
    return point


def run(
    sizes: Sequence[int],
    *,
    repeat: int = SCRAPE_REPEAT,
    template_managers: int = TEMPLATE_MANAGERS,
    log: Callable[[str], None] = lambda text: None,
) -> tuple[Template, list[SizePoint]]:
    now = datetime.now(UTC).replace(microsecond=0)
    log(f"scrape: replaying a month of the floor for reference_settings({template_managers})")
    template = build_template(now, template_managers)
    log(f"scrape: template built in {template.seconds:.1f} s ({template.events:,} events)")
    points = []
    for number, managers in enumerate(sizes):
        points.append(measure(template, managers, now, repeat=repeat, sweep=number == 0, log=log))
        gc.collect()
    return template, points


# -- the report --------------------------------------------------------------------


def report(template: Template, points: list[SizePoint], repeat: int = SCRAPE_REPEAT) -> list[str]:
    partitions = reference_settings(1).partitions
    load = os.getloadavg()
    lines = [
        "SCRAPE: one /metrics scrape of a month-like state through the HTTP endpoint "
        f"(metrics.server on aiohttp, {HOST}, in-process; the client another process); "
        f"gzip level {GZIP_LEVEL}",
        f"  state: {MONTH_DAYS:g} days of the simulated floor for {len(template.managers)} "
        f"template managers (reference_settings({template.roster}); {template.events:,} events, "
        f"simulated and replayed in {template.seconds:.1f} s), cloned to each size under the "
        f"ids of reference_settings(size), on {partitions} partitions",
        "  render: the exposition made once in-process, without HTTP; plain/gzip: request to "
        f"last byte, median of {repeat} scrapes each, alternating; loop stall: the longest "
        "the event loop was held during any scrape (gc: the longest garbage collection then)",
        f"  {'managers':>8} {'series':>10} {'series/mgr':>10} {'plain MB':>8} {'plain B/mgr':>11} "
        f"{'gzip MB':>7} {'gzip B/mgr':>10} {'ratio':>5} {'render s':>8} {'plain s':>7} "
        f"{'gzip s':>6} {'loop stall':>10} {'gc':>5} {'clone s':>7} {'RSS MiB':>7} {'peak':>5}",
    ]
    for p in points:
        plain, zipped = p.wire("identity"), p.wire("gzip")
        stall = max(fetch.loop_stall for fetch in p.fetches)
        pause = max(fetch.gc_pause for fetch in p.fetches)
        lines.append(
            f"  {p.managers:>8,} {p.render_series:>10,} {p.render_series / p.managers:>10,.0f} "
            f"{plain / 1e6:>8.1f} {plain / p.managers:>11,.0f} {zipped / 1e6:>7.2f} "
            f"{zipped / p.managers:>10,.0f} {plain / zipped:>5.1f} {p.render_seconds:>8.2f} "
            f"{p.seconds('identity'):>7.2f} {p.seconds('gzip'):>6.2f} "
            f"{stall * 1000:>8.0f}ms {pause * 1000:>3.0f}ms {p.build_seconds:>7.1f} "
            f"{p.rss_built:>7.0f} "
            f"{p.rss_peak:>5.0f}"
        )
    for p in points:
        spread = "; ".join(
            f"{name} "
            + ", ".join(f"{fetch.seconds:.2f}" for fetch in p.of(encoding))
            + f" s (first byte after {max(f.first_byte for f in p.of(encoding)):.2f} s at most)"
            for name, encoding in (("plain", "identity"), ("gzip", "gzip"))
        )
        check = (
            "each scrape's text (gzip decompressed) equal to the render's"
            if p.consistent()
            else "TEXT DIFFERS between scrapes or from the render"
        )
        lines.append(f"  {p.managers:,} managers: {spread}; {check}")
    for p in points:
        if p.sweep:
            lines.append(
                f"  gzip levels on the {p.managers:,}-manager text in-process "
                f"({p.render_bytes / 1e6:.1f} MB, chunk by chunk; "
                f"render {p.render_seconds:.2f} s): "
                + "; ".join(
                    f"level {level} {size / 1e6:.2f} MB ({p.render_bytes / size:.1f}x) in "
                    f"{seconds:.2f} s ({p.render_bytes / seconds / 1e6:.0f} MB/s)"
                    for level, size, seconds in p.sweep
                )
            )
    for p in points:
        target = TARGET_SECONDS.get(p.managers)
        if target is None:
            continue
        verdicts = ", ".join(
            f"{name} {'met' if p.seconds(encoding) <= target else 'NOT MET'} "
            f"({p.seconds(encoding):.2f} s)"
            for name, encoding in (("gzip", "gzip"), ("plain", "identity"))
        )
        lines.append(f"  target: one scrape <= {target:g} s at {p.managers:,} managers: {verdicts}")
    lines.append(f"  load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    parser.add_argument("--scrape-managers", default="1000,10000")
    parser.add_argument("--scrape-repeat", type=int, default=SCRAPE_REPEAT)
    parser.add_argument("--scrape-template", type=int, default=TEMPLATE_MANAGERS)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.scrape_managers.split(",") if size]
    template, points = run(
        sizes,
        repeat=args.scrape_repeat,
        template_managers=args.scrape_template,
        log=lambda text: print(f"  .. {text}", flush=True),
    )
    print("\n".join(report(template, points, args.scrape_repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
