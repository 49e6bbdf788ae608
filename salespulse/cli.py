"""The ``salespulse`` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from salespulse import __version__
from salespulse.arguments import SuggestingParser
from salespulse.settings import ConfigurationError, Settings, load_settings


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file (env SALESPULSE_CONFIG)")
    parser.add_argument("--broker", help="kafka://host:port (env SALESPULSE_BROKER)")


def _parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="salespulse",
        description="Streaming sales-department KPIs: CRM events in, Prometheus metrics out.",
    )
    parser.add_argument("--version", action="version", version=f"salespulse {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run one processing worker")
    _common(worker)
    worker.add_argument("--metrics-port", type=int, help="port of /metrics (default 9820)")
    worker.add_argument("--log-level", help="debug, info, warning, error")

    demo = commands.add_parser(
        "demo", help="embedded broker + worker + simulated sales floor; Ctrl-C stops all"
    )
    demo.add_argument("--config", help="TOML configuration (default: the built-in demo floor)")
    demo.add_argument("--metrics-port", type=int, help="port of /metrics (default 9820)")
    demo.add_argument(
        "--wall-port",
        type=int,
        default=9840,
        help="port of the web wall screen (default 9840; 0: no wall)",
    )
    demo.add_argument(
        "--history-days",
        type=float,
        default=30.0,
        help="days of history to backfill before the floor goes live at a real pace "
        "(default 30; 0: a compressed floor at --rate and --speed instead)",
    )
    demo.add_argument(
        "--rate", type=float, default=20.0, help="with --history-days 0: events per second"
    )
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--speed", type=float, default=60.0, help="with --history-days 0: time compression"
    )

    simulate = commands.add_parser("simulate", help="publish a simulated sales floor to a broker")
    _common(simulate)
    simulate.add_argument("--rate", type=float, default=20.0, help="events per second")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--speed", type=float, default=60.0, help="simulated time compression")
    simulate.add_argument("--limit", type=int, help="stop after this many events")
    simulate.add_argument("--duration", type=float, help="stop after this many seconds")
    simulate.add_argument(
        "--history-days",
        type=float,
        help="publish this many days of history first, then carry on at a real floor's pace "
        "(--rate, --speed, --limit and --duration do not apply)",
    )
    simulate.add_argument(
        "--per-workday",
        type=float,
        help="with --history-days: new deals, calls and tasks per manager and working day",
    )

    from salespulse.importer.command import add_import_arguments

    importer = commands.add_parser("import", help="backfill history from a CRM export (CSV)")
    _common(importer)
    add_import_arguments(importer)

    from salespulse.ingest import add_ingest_arguments

    add_ingest_arguments(
        commands.add_parser(
            "ingest", help="HTTP gateway for CRMs that cannot write to Kafka (webhooks, batches)"
        )
    )

    top = commands.add_parser("top", help="the wall screen in a terminal, read from /metrics")
    top.add_argument(
        "--url",
        action="append",
        help="a worker's /metrics (repeat for several workers; default localhost:9820)",
    )
    top.add_argument("--window", choices=["day", "week", "month"], default="week")
    top.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes")
    top.add_argument("--once", action="store_true", help="print one screen and exit")

    from salespulse.wall import add_wall_arguments

    add_wall_arguments(
        commands.add_parser("wall", help="the wall screen as a web page for an office TV")
    )

    from salespulse.report.command import add_report_arguments

    add_report_arguments(
        commands.add_parser("report", help="reports read from Prometheus (interventions)")
    )

    from salespulse.forecast.command import add_forecast_arguments

    add_forecast_arguments(
        commands.add_parser(
            "forecast", help="backtest the month's pipeline forecast on a CRM export (CSV)"
        )
    )

    schemas = commands.add_parser("schemas", help="the event contract as JSON Schema")
    schema_commands = schemas.add_subparsers(dest="schemas_command", required=True)
    export = schema_commands.add_parser("export", help="write one JSON Schema per event type")
    export.add_argument("--dir", type=Path, help="target directory (default: schemas/json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from salespulse.environment import unknown_variables

    for warning in unknown_variables(os.environ):
        print(f"salespulse: warning: {warning}", file=sys.stderr)
    try:
        if args.command == "worker":
            return _worker(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "schemas":
            return _schemas(args)
        if args.command == "ingest":
            from salespulse.ingest import ingest_command

            return ingest_command(args)
        if args.command == "import":
            from salespulse.importer.command import import_command

            return import_command(args)
        if args.command == "report":
            from salespulse.report.command import run_report

            return run_report(args)
        if args.command == "forecast":
            from salespulse.forecast.command import forecast_command

            return forecast_command(args)
        if args.command == "wall":
            from salespulse.wall import wall_command

            return wall_command(args)
        if args.command == "top":
            from salespulse.top import run

            urls = args.url or ["http://localhost:9820/metrics"]
            return run(urls, args.window, args.interval, args.once)
    except ConfigurationError as exc:
        print(f"salespulse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    flags = {
        "config": getattr(args, "config", None),
        "broker": getattr(args, "broker", None),
        "metrics_port": getattr(args, "metrics_port", None),
        "log_level": getattr(args, "log_level", None),
        **extra,
    }
    return load_settings(**flags)


def _worker(args: argparse.Namespace) -> int:
    from salespulse.worker import run_worker

    return run_worker(_settings(args))


def _simulate(args: argparse.Namespace) -> int:
    from salespulse.simulate.publisher import publish

    settings = _settings(args)
    if settings.broker is None:
        print(
            "salespulse: simulate needs a broker (--broker or SALESPULSE_BROKER); "
            "'salespulse demo' runs one embedded",
            file=sys.stderr,
        )
        return 2
    try:
        if args.history_days is not None:
            from salespulse.simulate.history import PER_WORKDAY
            from salespulse.simulate.publisher import publish_with_history

            sent = asyncio.run(
                publish_with_history(
                    settings,
                    seed=args.seed,
                    days=args.history_days,
                    per_workday=args.per_workday or PER_WORKDAY,
                )
            )
        else:
            sent = asyncio.run(
                publish(
                    settings,
                    rate=args.rate,
                    seed=args.seed,
                    speed=args.speed,
                    limit=args.limit,
                    duration=args.duration,
                )
            )
    except KeyboardInterrupt:
        return 130
    print(f"salespulse: published {sent} events", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from salespulse.broker import EmbeddedBroker, die_with_parent
    from salespulse.config import DEMO_CONFIG
    from salespulse.worker import EMBEDDED_GROUP_TIMING, run_worker

    if not args.config and not os.environ.get("SALESPULSE_CONFIG"):
        args.config = str(DEMO_CONFIG)
    os.environ.pop("SALESPULSE_BROKER", None)  # the demo always brings its own broker
    settings = _settings(args, broker=None)
    with EmbeddedBroker() as broker:
        env = {**os.environ, "SALESPULSE_BROKER": broker.url, "SALESPULSE_CONFIG": args.config}
        if args.history_days > 0:
            pace = ["--history-days", str(args.history_days)]
            floor = f"the last {args.history_days:g} days backfilled, then live at a real pace"
        else:
            pace = ["--rate", str(args.rate), "--speed", str(args.speed)]
            floor = f"{args.rate:g} events/s, time {args.speed:g}x compressed"
        simulator = subprocess.Popen(
            [sys.executable, "-m", "salespulse", "simulate", "--seed", str(args.seed), *pace],
            env=env,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        port = settings.metrics_port
        helpers = [simulator]
        wall = "off (--wall-port 0)"
        if args.wall_port:
            # The month: early in a week (or on a Monday morning) the week is still thin.
            helpers.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "salespulse", "wall", "--window", "month"),
                        *("--url", f"http://localhost:{port}/metrics"),
                        *("--port", str(args.wall_port)),
                    ],
                    env=env,
                    preexec_fn=die_with_parent,
                    start_new_session=True,
                )
            )
            wall = f"http://localhost:{args.wall_port}/"
        print(
            "\n".join(
                [
                    "",
                    "salespulse demo",
                    f"  broker (embedded)  {broker.url}",
                    f"  metrics            http://localhost:{port}/metrics",
                    f"  health             http://localhost:{port}/readyz",
                    f"  simulated floor    20 managers, 9-stage funnel, {floor}",
                    f"  terminal wall      salespulse top --url http://localhost:{port}/metrics",
                    f"  wall screen        {wall}",
                    "  Ctrl-C stops everything.",
                    "",
                ]
            ),
            file=sys.stderr,
            flush=True,
        )
        try:
            timing = {
                k: v for k, v in EMBEDDED_GROUP_TIMING.items() if k not in settings.model_fields_set
            }
            return run_worker(settings.model_copy(update={"broker": broker.url, **timing}))
        finally:
            for helper in helpers:
                helper.send_signal(signal.SIGTERM)
            for helper in helpers:
                try:
                    helper.wait(10)
                except subprocess.TimeoutExpired:
                    helper.kill()
                    helper.wait()


def _schemas(args: argparse.Namespace) -> int:
    from schemas.export import SCHEMA_DIR, export_schemas

    for path in export_schemas(args.dir or SCHEMA_DIR):
        print(path)
    return 0
