"""The five numbers compared before and after, from all-history totals at two instants.

Each is defined as the recording rules define it, over the window between
the instants: throughput = deals closed (won and lost); overall conversion =
deals reaching the funnel's last stage / deals reaching its first (pooled
over pipelines); overdue rate = tasks that became overdue / tasks whose
deadline passed; average call = talk time / answered calls; won value = the
amount of deals won. A ratio without a denominator is None, not zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The window's totals each number needs, by name.
TOTALS = (
    "deals_closed",
    "stage_first",
    "stage_last",
    "tasks_overdue",
    "tasks_deadline_passed",
    "call_seconds",
    "calls_answered",
    "won_amount",
)


@dataclass(frozen=True, slots=True)
class Figure:
    key: str
    title: str
    unit: str  # "count", "ratio", "minutes", "amount"


FIGURES = (
    Figure("throughput", "Throughput (deals closed)", "count"),
    Figure("conversion", "Overall conversion", "ratio"),
    Figure("overdue_rate", "Overdue rate", "ratio"),
    Figure("average_call", "Average call", "minutes"),
    Figure("won_value", "Won value", "amount"),
)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def figures(window: Mapping[str, float]) -> dict[str, float | None]:
    """The numbers of a window, from its totals (end minus start of each)."""
    seconds = _ratio(window["call_seconds"], window["calls_answered"])
    return {
        "throughput": window["deals_closed"],
        "conversion": _ratio(window["stage_last"], window["stage_first"]),
        "overdue_rate": _ratio(window["tasks_overdue"], window["tasks_deadline_passed"]),
        "average_call": None if seconds is None else seconds / 60,
        "won_value": window["won_amount"],
    }


def difference(end: Mapping[str, float], start: Mapping[str, float]) -> dict[str, float]:
    """The totals of the window between two instants (counters never reset: they are
    the processor's state, so a plain difference is exact)."""
    return {name: end[name] - start[name] for name in TOTALS}


def percent_change(before: float | None, after: float | None) -> float | None:
    """(after - before) / before in percent; None when there is nothing to compare with."""
    if before is None or after is None or before == 0:
        return None
    return (after - before) / before * 100


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "minutes":
        return f"{value:.1f} min"
    if unit == "count":
        return f"{value:g}"
    return f"{value:,.2f}"


def format_change(change: float | None) -> str:
    return "n/a" if change is None else f"{change:+.1f}%"
