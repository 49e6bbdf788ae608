"""``salespulse top``: the wall screen in a terminal, for people without Grafana.

It reads the workers' /metrics directly (no Prometheus needed), computes the
same ratios the recording rules do for one calendar window (salespulse.kpis,
shared with the web wall), and colours each against the manager's own KPI:
green when on target, amber when close, red when broken.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence

from salespulse.kpis import ManagerRow, fetch, grade, summarize

GREEN, AMBER, RED, DIM, BOLD, RESET = (
    "\033[32m",
    "\033[33m",
    "\033[31m",
    "\033[2m",
    "\033[1m",
    "\033[0m",
)
COLOURS = {"ok": GREEN, "near": AMBER, "bad": RED, "": ""}


def _cell(text: str, width: int, colour: str, use_colour: bool) -> str:
    padded = text.rjust(width)
    return f"{colour}{padded}{RESET}" if use_colour and colour else padded


def _colour(row: ManagerRow, kpi: str, value: float | None) -> str:
    return COLOURS[grade(kpi, value, row.targets.get(kpi))]


def render(rows: Iterable[ManagerRow], window: str, *, colour: bool = True) -> str:
    rows = list(rows)
    header = (
        f"{'manager':<24}{'team':<10}{'closed':>8}{'won':>6}{'vs team':>9}"
        f"{'overdue':>9}{'avg call':>10}"
    )
    lines = [
        f"{BOLD if colour else ''}salespulse — this {window}{RESET if colour else ''}",
        header,
    ]
    for row in rows:
        deviation = "—" if row.deviation is None else f"{row.deviation:+.0%}"
        overdue = "—" if row.overdue_rate is None else f"{row.overdue_rate:.0%}"
        if row.avg_call_seconds is None:
            call = "—"
        else:
            minutes, seconds = divmod(round(row.avg_call_seconds), 60)
            call = f"{minutes}:{seconds:02d}"
        lines.append(
            f"{row.name[:23]:<24}{row.team[:9]:<10}{row.closed:>8.0f}{row.won:>6.0f}"
            + _cell(deviation, 9, _colour(row, "max_throughput_deviation", row.deviation), colour)
            + _cell(overdue, 9, _colour(row, "max_overdue_rate", row.overdue_rate), colour)
            + _cell(
                call,
                10,
                _colour(row, "max_avg_call_duration_seconds", row.avg_call_seconds),
                colour,
            )
        )
    if not rows:
        lines.append("(no managers yet)")
    return "\n".join(lines)


def run(urls: Sequence[str], window: str, interval: float, once: bool) -> int:
    use_colour = sys.stdout.isatty()
    while True:
        try:
            screen = render(summarize(fetch(urls), window), window, colour=use_colour)
        except OSError as exc:
            screen = f"salespulse top: cannot read {', '.join(urls)}: {exc}"
            if once:
                print(screen, file=sys.stderr)
                return 1
        if once:
            print(screen)
            return 0
        sys.stdout.write(
            "\033[H\033[2J" + screen + f"\n\n{DIM}refresh every {interval:g}s, "
            f"Ctrl-C to quit{RESET}\n"
        )
        sys.stdout.flush()
        time.sleep(interval)
