"""Prometheus rules: promtool accepts them, their unit tests pass, and they stay in shape.

`promtool` comes with Debian's `prometheus` package. Without it these tests fail
rather than skip, so a CI image that lost it cannot pass silently; set
SALESPULSE_ALLOW_MISSING_TOOLS=1 to skip them on a workstation without it.

PyYAML is not a dependency, so the rule files are read with a small line-based
reader of the subset they use (rule lists with `record:`/`alert:` and `expr:`,
inline or as a block scalar). Its rule count is cross-checked against promtool's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from metrics import collector

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))

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
GAUGES = {family.name for family in collector.PERIOD_GAUGES.values()} | {
    collector.OPEN_DEALS.name,
    collector.OPEN_TASKS.name,
    collector.OPEN_TASKS_OVERDUE.name,
    "salespulse_kpi_target",
    "salespulse_manager_info",
    "salespulse_funnel_stage_info",
}
EXPORTED_METRICS = (
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in SUMMARIES for suffix in ("_sum", "_count")}
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)

# PromQL words that are not metric names (functions are recognised by their "(";
# aggregations may be followed by a grouping clause first).
GROUPING_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
OTHER_WORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    path: Path
    line: int
    kind: str  # "record" or "alert"
    name: str
    expr: str

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


# -- a reader for the YAML subset of rule and test files ----------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _key_value(stripped: str) -> tuple[str, str] | None:
    """`key: value` or `- key: value` -> (key, value); None for anything else."""
    if stripped.startswith("- "):
        stripped = stripped[2:].lstrip()
    key, colon, value = stripped.partition(":")
    if not colon or not key or " " in key or key.startswith("#"):
        return None
    return key, value.strip()


def _scalar(lines: list[str], index: int, value: str) -> tuple[str, int]:
    """The value of the key on lines[index] and the index of the line after it."""
    if not value.startswith(("|", ">")):
        return _unquote(value), index + 1
    key_indent = _indent(lines[index]) + (2 if lines[index].lstrip().startswith("- ") else 0)
    body: list[str] = []
    end = index + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > key_indent):
        body.append(lines[end].strip())
        end += 1
    return "\n".join(body).strip(), end


def read_rules(path: Path) -> list[Rule]:
    lines = path.read_text(encoding="utf-8").splitlines()
    rules: list[Rule] = []
    current: dict[str, str] = {}
    start = 0

    def flush() -> None:
        for kind in ("record", "alert"):
            if kind in current:
                rules.append(Rule(path, start, kind, current[kind], current.get("expr", "")))
        current.clear()

    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        pair = _key_value(stripped)
        if pair is None:
            index += 1
            continue
        key, value = pair
        if stripped.startswith("- ") and key in {"name", "record", "alert", "expr"}:
            flush()
            start = index + 1
        if key in {"record", "alert", "expr"}:
            current[key], index = _scalar(lines, index, value)
        else:
            index += 1
    flush()
    return rules


def read_test_expressions(path: Path) -> list[str]:
    """The `expr:` of every promql_expr_test in a promtool test file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[str] = []
    index = 0
    while index < len(lines):
        pair = _key_value(lines[index].strip())
        if pair is not None and pair[0] == "expr":
            expr, index = _scalar(lines, index, pair[1])
            found.append(expr)
        else:
            index += 1
    return found


# -- metric names used by a PromQL expression --------------------------------------


def _skip_string(expr: str, index: int) -> int:
    quote = expr[index]
    index += 1
    while index < len(expr) and expr[index] != quote:
        index += 2 if expr[index] == "\\" and quote != "`" else 1
    return index + 1


def _skip_to(expr: str, index: int, closing: str) -> int:
    """From an opening bracket at index to just after its closing one, strings skipped."""
    index += 1
    while index < len(expr) and expr[index] != closing:
        index = _skip_string(expr, index) if expr[index] in "\"'`" else index + 1
    return index + 1


def metric_names(expr: str) -> set[str]:
    names: set[str] = set()
    index = 0
    while index < len(expr):
        char = expr[index]
        if char == "#":
            newline = expr.find("\n", index)
            index = len(expr) if newline < 0 else newline
        elif char in "\"'`":
            index = _skip_string(expr, index)
        elif char == "{":
            index = _skip_to(expr, index, "}")
        elif char == "[":
            index = _skip_to(expr, index, "]")
        elif char.isdigit() or char == ".":
            while index < len(expr) and (expr[index].isalnum() or expr[index] in "._"):
                index += 1
        elif char.isalpha() or char in "_:":
            end = index
            while end < len(expr) and (expr[end].isalnum() or expr[end] in "_:"):
                end += 1
            word = expr[index:end]
            after = expr[end:].lstrip()
            index = end
            if word.lower() in GROUPING_WORDS:
                if after.startswith("("):
                    index = _skip_to(expr, len(expr) - len(after), ")")
            elif word.lower() not in OTHER_WORDS | AGGREGATIONS and not after.startswith("("):
                names.add(word)
        else:
            index += 1
    return names


# -- promtool ----------------------------------------------------------------------


def require_promtool() -> str:
    """promtool's path; a missing promtool fails the calling test (a fixture would error)."""
    path = shutil.which("promtool")
    if path is None:
        message = (
            "promtool not found on PATH; install it with `apt-get install prometheus` "
            "(Debian) or set SALESPULSE_ALLOW_MISSING_TOOLS=1 to skip these tests"
        )
        if os.environ.get("SALESPULSE_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=PROMETHEUS_DIR.parent.parent,
    )


def all_rules() -> list[Rule]:
    return [rule for path in RULE_FILES for rule in read_rules(path)]


def recording_rules() -> list[Rule]:
    return [rule for rule in all_rules() if rule.kind == "record"]


def test_there_are_rules_and_rule_tests() -> None:
    assert RULE_FILES, f"no rule files in {PROMETHEUS_DIR / 'rules'}"
    assert TEST_FILES, f"no promtool test files in {PROMETHEUS_DIR / 'tests'}"
    assert recording_rules(), "the reader found no recording rule"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: path.name)
def test_promtool_check_rules(path: Path) -> None:
    promtool = require_promtool()
    result = run_promtool(promtool, "check", "rules", "--lint=all", "--lint-fatal", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool check rules {path.name}:\n{output}"
    count = len(read_rules(path))
    assert f"{count} rules found" in output, (
        f"the YAML reader of this test found {count} rules, promtool:\n{output}"
    )


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda path: path.name)
def test_promtool_test_rules(path: Path) -> None:
    promtool = require_promtool()
    result = run_promtool(promtool, "test", "rules", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool test rules {path.name}:\n{output}"


# -- shape of the rules ----------------------------------------------------------


def test_recording_rule_names_are_level_metric_operations() -> None:
    bad = [
        f"{rule.where} {rule.name}"
        for rule in recording_rules()
        if not RECORD_NAME.match(rule.name)
    ]
    assert not bad, "recording rule names must be level:metric:operations:\n" + "\n".join(bad)


def test_recording_rules_use_only_exported_metrics_and_recorded_series() -> None:
    rules = recording_rules()
    known = EXPORTED_METRICS | {rule.name for rule in rules}
    unknown = [
        f"{rule.where} {rule.name}: {sorted(metric_names(rule.expr) - known)}"
        for rule in rules
        if metric_names(rule.expr) - known
    ]
    assert not unknown, "expressions use metrics nobody exports or records:\n" + "\n".join(unknown)
    assert all(rule.expr for rule in rules), "a recording rule without expr"


def test_every_recording_rule_is_unit_tested() -> None:
    tested: set[str] = set()
    for path in TEST_FILES:
        for expr in read_test_expressions(path):
            tested |= metric_names(expr)
    untested = sorted({rule.name for rule in recording_rules()} - tested)
    assert not untested, "recording rules no promtool test evaluates:\n" + "\n".join(untested)


def test_metric_name_reader() -> None:
    expr = """
        sum by (manager, window) (salespulse_period_calls{answered="true", x="}"})
      / on (team) group_left (team, name)
        (label_replace(a:b:c, "previous_stage", "$1", "stage", "(.*)") > bool 0)
      or increase(salespulse_calls_total[30d] offset 1h) # not_a_metric
    """
    assert metric_names(expr) == {"salespulse_period_calls", "a:b:c", "salespulse_calls_total"}
