"""Prometheus rules: promtool accepts them, their unit tests pass, and they stay in shape.

`promtool` comes with Debian's `prometheus` package; without it these tests fail
(tests/support/promtool.py).

Rule and test files are read, and their PromQL parsed, by tests/support/promql.py;
its rule count is cross-checked against promtool's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metrics import collector
from tests.support.promql import (
    RULE_TESTS_DIR,
    RULES_DIR,
    Rule,
    all_rules,
    metric_names,
    read_rules,
    rule_files,
    rule_test_expressions,
    rule_test_files,
)
from tests.support.promtool import run_promtool

RULE_FILES = rule_files()
TEST_FILES = rule_test_files()

RECORD_NAME = re.compile(r"^[a-z_]+:[a-z_]+:[a-z0-9_]+$")

# The metrics the processor exports (the spec the rules are written against),
# from the families the exposition renders, and the configuration ones.
COUNTERS = {
    f"{family.name}_total"
    for spec in collector.COUNTERS
    for family in (spec.manager, spec.team)
    if family is not None
} | {f"{family.name}_total" for family in collector.PROCESSOR_COUNTERS.values()}
SUMMARIES = {spec.manager.name for spec in collector.HISTOGRAMS if spec.manager is not None}
HISTOGRAMS = {spec.team.name for spec in collector.HISTOGRAMS}
GAUGES = (
    {family.name for family in collector.PERIOD_GAUGES.values()}
    | {family.name for family in collector.TEAM_PERIOD_GAUGES.values()}
    | {
        collector.OPEN_DEALS.name,
        collector.OPEN_DEALS_AMOUNT.name,
        collector.STUCK_DEALS.name,
        collector.OPEN_DEALS_BY_AGE.name,
        collector.OPEN_TASKS.name,
        collector.OPEN_TASKS_OVERDUE.name,
        "salespulse_kpi_target",
        "salespulse_plan_target",
        "salespulse_calendar_elapsed_ratio",
        "salespulse_calendar_month_seconds_left",
        "salespulse_funnel_stage_follows",
        "salespulse_manager_info",
        "salespulse_funnel_stage_info",
    }
)
EXPORTED_METRICS = (
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in SUMMARIES for suffix in ("_sum", "_count")}
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)


def recording_rules() -> list[Rule]:
    return [rule for rule in all_rules() if rule.kind == "record"]


def test_there_are_rules_and_rule_tests() -> None:
    assert RULE_FILES, f"no rule files in {RULES_DIR}"
    assert TEST_FILES, f"no promtool test files in {RULE_TESTS_DIR}"
    assert recording_rules(), "the reader found no recording rule"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: path.name)
def test_promtool_check_rules(path: Path) -> None:
    result = run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool check rules {path.name}:\n{output}"
    count = len(read_rules(path))
    assert f"{count} rules found" in output, (
        f"tests/support/promql.py found {count} rules, promtool:\n{output}"
    )


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: path.name)
def test_promtool_test_rules(path: Path) -> None:
    result = run_promtool("test", "rules", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool test rules {path.name}:\n{output}"


# -- shape of the rules ----------------------------------------------------------


def test_recording_rule_names_are_level_metric_operations() -> None:
    bad = [rule.where for rule in recording_rules() if not RECORD_NAME.match(rule.name)]
    assert not bad, "recording rule names must be level:metric:operations:\n" + "\n".join(bad)


def test_recording_rules_use_only_exported_metrics_and_recorded_series() -> None:
    rules = recording_rules()
    known = EXPORTED_METRICS | {rule.name for rule in rules}
    unknown = [
        f"{rule.where}: {sorted(metric_names(rule.expr) - known)}"
        for rule in rules
        if metric_names(rule.expr) - known
    ]
    assert not unknown, "expressions use metrics nobody exports or records:\n" + "\n".join(unknown)
    assert all(rule.expr for rule in rules), "a recording rule without expr"


def test_every_recording_rule_is_unit_tested() -> None:
    tested: set[str] = set()
    for path in TEST_FILES:
        for expr in rule_test_expressions(path):
            tested |= metric_names(expr)
    untested = sorted({rule.name for rule in recording_rules()} - tested)
    assert not untested, "recording rules no promtool test evaluates:\n" + "\n".join(untested)
