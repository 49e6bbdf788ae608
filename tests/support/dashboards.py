"""The Grafana dashboards' PromQL, for the unit checks and for runs against a live Prometheus.

``iter_queries(dashboard_json)`` lists every expression a dashboard sends to
Prometheus: each panel target's ``expr`` and the PromQL inside each query
variable (``label_values(<selector>, label)`` -> the selector,
``query_result(<expr>)`` -> the expression). Expressions still contain Grafana
variables; ``render_expr`` fills them in with example values (or yours) so the
result can be sent to Prometheus' ``/api/v1/query`` or checked by ``promtool``,
and ``parse_query`` parses the result with tests/support/promql.py, which reads
the rules' PromQL too.

Metric names a dashboard may use (``known_metric_names``): the ``salespulse_*``
metrics of README.md's "Metrics out" table (histograms with their ``_bucket``,
``_sum`` and ``_count`` series) and of its "Operating it" health paragraph, the
recording rules in deploy/prometheus/rules/*.yml, ``ALERTS`` and ``up``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import promql_parser

from tests.support.promql import all_rules, metric_names, parse

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO_ROOT / "deploy" / "grafana" / "dashboards"
README = REPO_ROOT / "README.md"

JSONObject = dict[str, Any]


class Query(NamedTuple):
    dashboard: str  # the dashboard's uid
    panel: str  # the panel title, or "variable $name"
    expr: str


# -- dashboards ------------------------------------------------------------------------


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> dict[str, JSONObject]:
    """The committed dashboards by uid."""
    dashboards: dict[str, JSONObject] = {}
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        dashboards[str(dashboard["uid"])] = dashboard
    return dashboards


def iter_panels(dashboard: JSONObject) -> Iterator[JSONObject]:
    """Every panel, those inside (collapsed) rows included; rows themselves excluded."""

    def walk(panels: list[JSONObject]) -> Iterator[JSONObject]:
        for panel in panels:
            if panel.get("type") == "row":
                yield from walk(panel.get("panels") or [])
            else:
                yield panel

    yield from walk(dashboard.get("panels") or [])


def _call_argument(text: str, function: str) -> str | None:
    """The text between ``function(`` and its matching ``)``, or None."""
    text = text.strip()
    if not text.startswith(function + "(") or not text.endswith(")"):
        return None
    return text[len(function) + 1 : -1].strip()


def variable_promql(query: object) -> str | None:
    """The PromQL inside a Prometheus query variable, or None when there is none."""
    if isinstance(query, dict):
        query = query.get("query", "")
    if not isinstance(query, str) or not query.strip():
        return None
    inner = _call_argument(query, "query_result")
    if inner is not None:
        return inner
    inner = _call_argument(query, "label_values")
    if inner is not None:
        selector, comma, _label = inner.rpartition(",")
        return selector.strip() if comma and selector.strip() else None
    inner = _call_argument(query, "query_values")
    if inner is not None:
        return inner
    return None  # label_names(), metrics(), a constant list, ...


def iter_queries(dashboard: JSONObject) -> list[Query]:
    """(dashboard uid, panel title, expr) for every PromQL expression of *dashboard*:
    panel targets (hidden ones included), query variables and annotations."""
    uid = str(dashboard.get("uid", dashboard.get("title", "?")))
    found: list[Query] = []
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if variable.get("type") != "query":
            continue
        expr = variable_promql(variable.get("query"))
        if expr is not None:
            found.append(Query(uid, f"variable ${variable.get('name')}", expr))
    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        expr = annotation.get("expr")
        if isinstance(expr, str) and expr.strip():
            found.append(Query(uid, f"annotation {annotation.get('name')}", expr))
    for panel in iter_panels(dashboard):
        for target in panel.get("targets") or []:
            expr = target.get("expr")
            if isinstance(expr, str) and expr.strip():
                found.append(Query(uid, str(panel.get("title", "")), expr))
    return found


# -- Grafana variables -------------------------------------------------------------------

# Values that make every expression a valid query: a team, manager and funnel of
# the demo company (salespulse/config/demo.toml); override them for other data.
EXAMPLE_VARIABLES: dict[str, str] = {
    "window": "week",
    "team": "North",
    "pipeline": "default",
    "manager": "m-01",
    "instance": ".*",
    "product": ".*",
    "channel": ".*",
    "segment": ".*",
    "__range": "1d",
    "__interval": "15m",
    "__rate_interval": "1m",
}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


def render_expr(expr: str, values: Mapping[str, str] | None = None) -> str:
    """*expr* with its Grafana variables (``$name``, ``${name}``, ``[[name]]``) replaced
    by *values* over :data:`EXAMPLE_VARIABLES`; unknown variables raise KeyError."""
    merged = {**EXAMPLE_VARIABLES, **(values or {})}

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        return merged[name]

    return _VARIABLE.sub(replace, expr)


# -- reading PromQL ----------------------------------------------------------------------


def parse_query(expr: str, values: Mapping[str, str] | None = None) -> promql_parser.Expr:
    """The syntax tree of a dashboard expression, its Grafana variables filled in
    (:func:`render_expr`); ValueError with the parser's message if it is invalid."""
    return parse(render_expr(expr, values))


def query_metric_names(expr: str) -> set[str]:
    """The metric names (and recording rule names) a dashboard expression selects."""
    return metric_names(parse_query(expr))


# -- what exists -------------------------------------------------------------------------


def _section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown text."""
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise ValueError(f"no '## {heading}' section")
    return match.group(1)


def readme_metrics(readme: Path = README) -> set[str]:
    """The salespulse_* series README.md documents: the "Metrics out" table and the
    health metrics of "Operating it"."""
    text = readme.read_text(encoding="utf-8")
    names: set[str] = set()
    for line in _section(text, "Metrics out").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or "salespulse_" not in cells[0]:
            continue
        for name in re.findall(r"`(salespulse_\w+)`", cells[0]):
            if cells[1] == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif cells[1].startswith("summary"):
                names |= {f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
    operating = _section(text, "Operating it")
    health = re.search(r"\*\*Health\.\*\*(.*?)(?:\n\s*\n|\Z)", operating, re.S)
    if health is None:
        raise ValueError("no **Health.** paragraph in 'Operating it'")
    names |= set(re.findall(r"`(salespulse_[a-z0-9_]+)", health.group(1)))
    return names


def recording_rules() -> set[str]:
    """Names of the recording rules in deploy/prometheus/rules/*.yml."""
    return {rule.name for rule in all_rules() if rule.kind == "record"}


def known_metric_names() -> set[str]:
    return readme_metrics() | recording_rules() | {"ALERTS", "up"}
