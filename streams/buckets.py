"""Histogram buckets, chosen to resolve the KPI ranges the department argues about."""

from __future__ import annotations

from collections.abc import MutableMapping

HOUR = 3600.0
DAY = 86400.0

# Time spent in a funnel stage: hours for fast stages, weeks for negotiations.
STAGE_DURATION_BUCKETS: tuple[float, ...] = (
    HOUR,
    4 * HOUR,
    12 * HOUR,
    DAY,
    2 * DAY,
    3 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    60 * DAY,
    90 * DAY,
)

# Creation to won.
SALES_CYCLE_BUCKETS: tuple[float, ...] = (
    DAY,
    3 * DAY,
    7 * DAY,
    14 * DAY,
    30 * DAY,
    60 * DAY,
    90 * DAY,
    180 * DAY,
    365 * DAY,
)

# Answered call length: fine around the team norm (15 min) and the targets (22, 27 min).
CALL_DURATION_BUCKETS: tuple[float, ...] = tuple(
    minutes * 60.0 for minutes in (1, 2, 5, 10, 15, 20, 22, 25, 27, 30, 45, 60)
)

HISTOGRAM_BUCKETS: dict[str, tuple[float, ...]] = {
    "deal_stage_duration_seconds": STAGE_DURATION_BUCKETS,
    "deal_sales_cycle_seconds": SALES_CYCLE_BUCKETS,
    "answered_call_duration_seconds": CALL_DURATION_BUCKETS,
}


def observe(
    histograms: MutableMapping[tuple[str, ...], list[float]], key: tuple[str, ...], value: float
) -> None:
    """Count *value* into the histogram series *key* = (histogram name, *labels)."""
    bounds = HISTOGRAM_BUCKETS[key[0]]
    series = histograms.get(key)
    if series is None:
        series = [0.0] * (len(bounds) + 2)  # one per finite bucket, then sum and count
        histograms[key] = series
    for index, bound in enumerate(bounds):
        if value <= bound:
            series[index] += 1
            break
    series[-2] += value
    series[-1] += 1
