"""``salespulse forecast --backtest FILE``: how the month forecast would have done.

::

    salespulse forecast --backtest sales_pipeline.csv
    salespulse forecast --backtest export.csv --mapping my-crm.toml --config company.toml

The export is converted to events with the importer's mapping (``--mapping``,
or the built-in one whose header the file has), replayed offline through the
processor (replay.py), and at the start of each month the forecast of that
month's won value and won deals is made from what was known then
(backtest.py). Printed per month, for the whole company and per team: the
forecast with its p10-p90 range, the actual, and the two naive baselines
(last month's won value, the trailing three-month mean), then the mean
absolute percentage error of each. ``--look-back-days`` and
``--min-own-deals`` are the forecast's look-back and the deals a manager's
own win rate must rest on.

An export whose open deals carry no amount (the sample's) forecasts a won
value of nothing but what is won already; ``--list-prices CSV`` (columns
``product`` and ``sales_price``, like the sample's products.csv) values such
deals at their product's list price instead.

Exit codes: 0 done, 2 the file, mapping or configuration cannot be used.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from salespulse.forecast.backtest import (
    Backtest,
    MonthRow,
    errors,
    moments_for,
    months_between,
    run_backtest,
)
from salespulse.forecast.model import LOOK_BACK_DAYS, MIN_OWN_DEALS
from salespulse.forecast.replay import Pricing, replay
from salespulse.importer.command import check_pipeline, choose_mapping
from salespulse.importer.convert import convert_rows, read_rows
from salespulse.importer.mapping import BUILTIN_COMPANY_CONFIGS, detect_builtin
from salespulse.settings import ConfigurationError, load_settings

PROG = "salespulse forecast"


def add_forecast_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backtest",
        type=Path,
        required=True,
        metavar="FILE",
        help="replay this CRM export (CSV) and forecast each of its months from what was "
        "known at its start",
    )
    parser.add_argument("--mapping", type=Path, help="column mapping (TOML) for the export")
    parser.add_argument(
        "--config",
        help="company configuration (default: SALESPULSE_CONFIG, or the built-in mapping's)",
    )
    parser.add_argument(
        "--undated-at",
        type=date.fromisoformat,
        metavar="DATE",
        help="create open deals without any date on this day (default: leave them out)",
    )
    parser.add_argument(
        "--list-prices",
        type=Path,
        metavar="CSV",
        help="value open deals without an amount at their product's price "
        "(columns product, sales_price)",
    )
    parser.add_argument(
        "--look-back-days",
        type=float,
        help=f"days of history a win rate is learned from (default: the company file's "
        f"[forecast] look_back_days, {LOOK_BACK_DAYS})",
    )
    parser.add_argument(
        "--min-own-deals",
        type=float,
        help=f"deals a manager's own win rate needs (default: [forecast] min_own_deals, "
        f"{MIN_OWN_DEALS})",
    )


def forecast_command(args: argparse.Namespace) -> int:
    try:
        return _backtest(args, sys.stdout)
    except ConfigurationError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _backtest(args: argparse.Namespace, out: TextIO) -> int:
    path: Path = args.backtest
    header, rows = read_rows(path)
    args.file, args.builtin = path, None  # what choose_mapping reads
    chosen = choose_mapping(args, header)
    mapping = chosen.mapping
    missing = mapping.missing_columns(header)
    if missing:
        raise ConfigurationError(f"{path} lacks the columns {missing} that the mapping reads")
    config = args.config
    builtin = detect_builtin(header) if args.mapping is None else None
    if config is None and builtin is not None:
        config = str(BUILTIN_COMPANY_CONFIGS[builtin])
    settings = load_settings(config=config)
    if args.look_back_days is None:
        args.look_back_days = float(settings.forecast.look_back_days)
    if args.min_own_deals is None:
        args.min_own_deals = float(settings.forecast.min_own_deals)
    warning = check_pipeline(mapping, settings)
    if warning:
        raise ConfigurationError(warning)
    conversion = convert_rows(mapping, header, rows, undated_at=args.undated_at)
    events = conversion.events
    if not events:
        raise ConfigurationError(f"{path}: no row became an event")
    price = _prices(args.list_prices) if args.list_prices else None
    months = months_between(events[0].occurred_at, events[-1].occurred_at, settings)
    moments = moments_for(months, settings, args.look_back_days)
    replayed = replay(settings, events, moments, price)
    result = run_backtest(
        settings,
        replayed.snapshots,
        months,
        look_back_days=args.look_back_days,
        min_own=args.min_own_deals,
    )
    rejected = len(conversion.rejects)
    out.write(
        f"{PROG}: {path} ({chosen.described}): {conversion.rows_read:,} rows, "
        f"{len(events):,} events, {rejected:,} rows left out, "
        f"{replayed.dead_letters:,} events refused by the processor\n"
        f"look-back {args.look_back_days:g} days, own win rate from "
        f"{args.min_own_deals:g} deals, open deals without an amount valued at "
        f"{'their list price' if price else '0'}\n"
    )
    write_table(result, out)
    return 0


def _prices(path: Path) -> Pricing:
    """A product -> price lookup from a CSV with columns product and sales_price."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            table = {
                row["product"].strip(): float(row["sales_price"])
                for row in csv.DictReader(handle)
                if row.get("product") and row.get("sales_price")
            }
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigurationError(
            f"list prices {path} cannot be read (columns product, sales_price): {exc}"
        ) from None
    return table.get


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def write_table(result: Backtest, out: TextIO) -> None:
    """Each scope's months, then its errors; a month marked * is scored."""
    for scope, rows in result.scopes.items():
        out.write(f"\n{scope}\n")
        out.write(
            f"{'month':<8} {'forecast':>11} {'p10-p90':>21} {'actual':>11} "
            f"{'last month':>11} {'3-mo mean':>11}   {'deals fc':>8} {'actual':>6} "
            f"{'last':>6} {'3-mo':>6}\n"
        )
        for row in rows:
            out.write(_row(row))
        found = errors(rows)
        out.write(
            f"MAPE over {found.months} scored months (*): won value forecast "
            f"{_percent(found.value['forecast'])}, last month "
            f"{_percent(found.value['last month'])}, 3-month mean "
            f"{_percent(found.value['3-month mean'])}; won deals forecast "
            f"{_percent(found.deals['forecast'])}, last month "
            f"{_percent(found.deals['last month'])}, 3-month mean "
            f"{_percent(found.deals['3-month mean'])}\n"
        )


def _row(row: MonthRow) -> str:
    forecast = row.forecast
    spread = f"{_money(forecast.value_p10)}-{_money(forecast.value_p90)}"
    mark = "*" if row.scored else " "
    return (
        f"{row.month:%Y-%m}{mark} {_money(forecast.value):>11} {spread:>21} "
        f"{_money(row.actual_value):>11} {_money(row.last_value):>11} "
        f"{_money(row.trailing_value):>11}   {_count(forecast.deals):>8} "
        f"{row.actual_deals:>6,.0f} {_count(row.last_deals):>6} {_count(row.trailing_deals):>6}\n"
    )
