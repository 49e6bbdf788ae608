"""``salespulse report interventions``: the command line around the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from salespulse.report.build import changes, measure, table
from salespulse.report.page import page
from salespulse.report.prometheus import Prometheus, PrometheusError
from salespulse.settings import ConfigurationError, load_settings


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    reports = parser.add_subparsers(dest="report", required=True)
    interventions = reports.add_parser(
        "interventions",
        help="each intervention and KPI change: the weeks before against the weeks after",
    )
    interventions.add_argument("--prometheus", required=True, help="Prometheus base URL")
    interventions.add_argument("--weeks", type=int, default=4, help="weeks on each side")
    interventions.add_argument("--config", help="the company file (env SALESPULSE_CONFIG)")
    interventions.add_argument("--out", type=Path, help="write an HTML page with plots here")


def run_report(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(config=args.config)
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.weeks < 1:
        print("--weeks must be at least 1", file=sys.stderr)
        return 2
    prometheus = Prometheus(args.prometheus)
    try:
        results = [measure(prometheus, c, args.weeks, settings) for c in changes(settings)]
    except PrometheusError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(table(results))
    if args.out is not None:
        args.out.write_text(page(results), encoding="utf-8")
        print(f"wrote {args.out}")
    return 0
