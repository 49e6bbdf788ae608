"""All-history totals of a manager or a team at an instant, from Prometheus's HTTP API.

One instant query per total and instant: each reads the last sample of the
subject's few series, so a report costs O(series), not the weeks of samples
between the instants, and needs no recording rule or processor state of its
own. A total reads the newest sample of the hour before the instant, so a
scrape or two missed around a boundary changes nothing.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime

from salespulse.report.figures import TOTALS

LOOKBACK = "1h"

# The funnel's first stage and its last (the stage no other stage follows), as the
# recording rules find them from salespulse_funnel_stage_info.


def _stage_info(matchers: str) -> str:
    return f"last_over_time(salespulse_funnel_stage_info{{{matchers}}}[{LOOKBACK}])"


_FIRST_STAGE = _stage_info('index="0"')
_ANY_STAGE = _stage_info("")
_FOLLOWED = _stage_info('previous_stage!=""')
_FIRST = f"max by (pipeline, stage) ({_FIRST_STAGE})"
_LAST = (
    f"max by (pipeline, stage) ({_ANY_STAGE})\n"
    "unless on (pipeline, stage)\n"
    "label_replace(\n"
    f"  max by (pipeline, previous_stage) ({_FOLLOWED}),\n"
    '  "stage", "$1", "previous_stage", "(.*)"\n'
    ")"
)
_SERIES = {
    "deals_closed": ("salespulse_deals_closed_total", ""),
    "tasks_overdue": ("salespulse_tasks_overdue_total", ""),
    "tasks_deadline_passed": ("salespulse_tasks_deadline_passed_total", ""),
    "call_seconds": ("salespulse_call_duration_seconds_total", ""),
    "calls_answered": ("salespulse_calls_total", 'answered="true"'),
    "won_amount": ("salespulse_deals_won_amount_total", ""),
}


class PrometheusError(Exception):
    """Prometheus could not be asked, or refused a query; the message says which."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose numbers: one manager, or every manager of a team (by the company file's
    team, as salespulse_manager_info carries it)."""

    manager: str | None = None
    team: str | None = None

    def label(self) -> str:
        return f"manager {self.manager}" if self.manager is not None else f"team {self.team}"

    def series(self, metric: str, matchers: str = "") -> str:
        """*metric*'s series of this subject, each at its newest sample before the instant."""
        if self.manager is not None:
            inner = ",".join(m for m in (f'manager="{_quote(self.manager)}"', matchers) if m)
            return f"last_over_time({metric}{{{inner}}}[{LOOKBACK}])"
        own = f"last_over_time({metric}{{{matchers}}}[{LOOKBACK}])"
        team = f'salespulse_manager_info{{team="{_quote(self.team or "")}"}}'
        return f"({own} and on (manager) last_over_time({team}[{LOOKBACK}]))"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def total_queries(subject: Subject) -> dict[str, str]:
    """The PromQL of each total for *subject*."""
    queries = {name: f"sum({subject.series(*series)})" for name, series in _SERIES.items()}
    reached = subject.series("salespulse_funnel_stage_reached_total")
    for name, stages in (("stage_first", _FIRST), ("stage_last", _LAST)):
        queries[name] = f"sum(\n{reached}\n* on (pipeline, stage) group_left ()\n(\n{stages}\n)\n)"
    assert set(queries) == set(TOTALS)
    return queries


class Prometheus:
    """Instant queries against one Prometheus (or anything serving its query API)."""

    def __init__(self, url: str, *, timeout: float = 30.0):
        self._url = url.rstrip("/")
        self._timeout = timeout

    def instant(self, expr: str, at: datetime) -> float:
        """The sum of *expr*'s samples at *at*; 0 when it has none (nothing happened yet)."""
        body = urllib.parse.urlencode({"query": expr, "time": f"{at.timestamp():.3f}"}).encode()
        request = urllib.request.Request(f"{self._url}/api/v1/query", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
        except (urllib.error.URLError, OSError) as error:
            raise PrometheusError(f"cannot reach Prometheus at {self._url}: {error}") from None
        if answer.get("status") != "success":
            raise PrometheusError(f"Prometheus refused a query: {answer.get('error', answer)}")
        result = answer["data"]["result"]
        return sum(float(sample["value"][1]) for sample in result)

    def totals(self, subject: Subject, at: datetime) -> dict[str, float]:
        return {name: self.instant(expr, at) for name, expr in total_queries(subject).items()}
