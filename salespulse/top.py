"""``salespulse top``: the wall screen in a terminal, for people without Grafana.

It reads the workers' /metrics directly (no Prometheus needed), computes the
same ratios the recording rules do for one calendar window, and colours each
against its KPI: green when on target, amber when close, red when broken.
"""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

GREEN, AMBER, RED, DIM, BOLD, RESET = (
    "\033[32m",
    "\033[33m",
    "\033[31m",
    "\033[2m",
    "\033[1m",
    "\033[0m",
)
AMBER_MARGIN = 0.75  # amber from 75% of the way to a maximum target

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class ManagerRow:
    manager: str
    name: str
    team: str
    closed: float
    won: float
    deviation: float | None  # from the team average of active managers
    overdue_rate: float | None
    avg_call_seconds: float | None
    targets: dict[str, float]


def fetch(urls: Sequence[str], timeout: float = 5.0) -> dict[str, dict[Labels, float]]:
    """Samples of every URL, summed over workers: name -> labels -> value."""
    merged: dict[str, dict[Labels, float]] = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series = merged.setdefault(sample.name, {})
                key = frozenset(sample.labels.items())
                if family.name in ("salespulse_kpi_target", "salespulse_manager_info"):
                    series[key] = sample.value  # configuration: same on every worker
                else:
                    series[key] = series.get(key, 0.0) + sample.value
    return merged


def _by_manager(
    samples: dict[str, dict[Labels, float]], name: str, **wanted: str
) -> dict[str, float]:
    found: dict[str, float] = {}
    for labels, value in samples.get(name, {}).items():
        label_map = dict(labels)
        if all(label_map.get(k) == v for k, v in wanted.items()):
            manager = label_map.get("manager", "")
            found[manager] = found.get(manager, 0.0) + value
    return found


def summarize(samples: dict[str, dict[Labels, float]], window: str) -> list[ManagerRow]:
    info = {
        dict(labels)["manager"]: dict(labels)
        for labels in samples.get("salespulse_manager_info", {})
    }
    closed = _by_manager(samples, "salespulse_period_deals_closed", window=window)
    won = _by_manager(samples, "salespulse_period_deals_closed", window=window, outcome="won")
    created = _by_manager(samples, "salespulse_period_deals_created", window=window)
    calls = _by_manager(samples, "salespulse_period_calls", window=window)
    answered = _by_manager(samples, "salespulse_period_calls", window=window, answered="true")
    talk = _by_manager(samples, "salespulse_period_call_duration_seconds", window=window)
    due = _by_manager(samples, "salespulse_period_tasks_deadline_passed", window=window)
    overdue = _by_manager(samples, "salespulse_period_tasks_overdue", window=window)
    targets: dict[str, dict[str, float]] = {}
    for labels, value in samples.get("salespulse_kpi_target", {}).items():
        label_map = dict(labels)
        targets.setdefault(label_map["manager"], {})[label_map["kpi"]] = value

    managers = sorted(set(info) | set(closed))
    active = {m for m in managers if closed.get(m, 0) + created.get(m, 0) + calls.get(m, 0) > 0}
    team_of = {m: info.get(m, {}).get("team", "") for m in managers}
    averages: dict[str, float] = {}
    for team in set(team_of.values()):
        members = [m for m in active if team_of[m] == team]
        if members:
            averages[team] = sum(closed.get(m, 0.0) for m in members) / len(members)

    rows = []
    for manager in managers:
        average = averages.get(team_of[manager])
        deviation = None
        if manager in active and average:
            deviation = (closed.get(manager, 0.0) - average) / average
        rows.append(
            ManagerRow(
                manager=manager,
                name=info.get(manager, {}).get("name", manager),
                team=team_of[manager],
                closed=closed.get(manager, 0.0),
                won=won.get(manager, 0.0),
                deviation=deviation,
                overdue_rate=overdue.get(manager, 0.0) / due[manager] if due.get(manager) else None,
                avg_call_seconds=(
                    talk.get(manager, 0.0) / answered[manager] if answered.get(manager) else None
                ),
                targets={**targets.get("", {}), **targets.get(manager, {})},
            )
        )
    return rows


def _grade_max(value: float | None, limit: float | None) -> str:
    """Colour of a value that must stay at or below *limit*."""
    if value is None or limit is None:
        return ""
    if value > limit:
        return RED
    return AMBER if value > limit * AMBER_MARGIN else GREEN


def _grade_deviation(value: float | None, limit: float | None) -> str:
    if value is None or limit is None:
        return ""
    if abs(value) > limit:
        return RED
    return AMBER if abs(value) > limit / 2 else GREEN


def _cell(text: str, width: int, colour: str, use_colour: bool) -> str:
    padded = text.rjust(width)
    return f"{colour}{padded}{RESET}" if use_colour and colour else padded


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
            + _cell(
                deviation,
                9,
                _grade_deviation(row.deviation, row.targets.get("max_throughput_deviation")),
                colour,
            )
            + _cell(
                overdue,
                9,
                _grade_max(row.overdue_rate, row.targets.get("max_overdue_rate")),
                colour,
            )
            + _cell(
                call,
                10,
                _grade_max(row.avg_call_seconds, row.targets.get("max_avg_call_duration_seconds")),
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
