"""Alerting: the alert rules pass promtool and their unit tests, Alertmanager routes as intended.

- `promtool check rules` and `promtool test rules` on the alerting rules and
  their tests (the recording-rule tests run in test_prometheus_rules.py);
- `amtool check-config` on deploy/alertmanager/alertmanager.yml, and every line
  of deploy/alertmanager/tests.txt through `amtool config routes test`;
- a private Alertmanager (no cluster, a free loopback port, stopped at the end)
  shows that manager alerts are inhibited while the processor is down, and,
  with its receivers pointed at a webhook receiver of the test, that KPI
  notifications go out only in sales hours (the time interval `sales-hours`,
  rewritten to contain now or not) while processor alerts go out at any hour;
- the sales hours are in the company's time zone (deploy/salespulse/company.toml);
- static checks: every alert is named Salespulse..., has a `for:`, severity,
  summary, description and runbook_url, every runbook_url is an anchor of a heading in
  docs/runbook.md, and every alert has a promtool case where it fires and one
  where it does not.

promtool comes with Debian's `prometheus` package, amtool and the Alertmanager
with `prometheus-alertmanager`. Without them these tests fail rather than skip,
so a CI image that lost them cannot pass silently; set
SALESPULSE_ALLOW_MISSING_TOOLS=1 to skip them on a workstation without them.

PyYAML is not a dependency, so the files are read with a small line-based
reader of the YAML subset they use; its rule count is cross-checked against
promtool's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.support.monitoring import PLACEHOLDER_HOOKS, WebhookReceiver

ROOT = Path(__file__).resolve().parents[3]
ALERT_RULES = ROOT / "deploy" / "prometheus" / "rules" / "salespulse-alerts.yml"
ALERT_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("salespulse-alerts*.test.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
ROUTE_TESTS = ROOT / "deploy" / "alertmanager" / "tests.txt"
RUNBOOK = ROOT / "docs" / "runbook.md"
COMPANY_CONFIG = ROOT / "deploy" / "salespulse" / "company.toml"
SALES_HOURS = "sales-hours"  # the time interval of the KPI routes in alertmanager.yml

RUNBOOK_BASE = "https://github.com/salespulse/salespulse/blob/main/docs/runbook.md#"
SEVERITIES = {"page", "ticket"}
COMPONENTS = {"kpi", "processor"}
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")

# The receiver an alert of each severity and component reaches (KPI alerts with team=North).
EXPECTED_RECEIVER = {
    ("page", "processor"): "sre-pager",
    ("ticket", "processor"): "sre-tickets",
    ("page", "kpi"): "team-north-pager",
    ("ticket", "kpi"): "salespulse-tickets",
}


# -- tools -------------------------------------------------------------------------


def require_tool(*names: str, package: str) -> str:
    """The path of the first of `names` on PATH; fails (or skips, if allowed) without one."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    message = (
        f"{' or '.join(names)} not found on PATH; install it with `apt-get install {package}` "
        "(Debian) or set SALESPULSE_ALLOW_MISSING_TOOLS=1 to skip these tests"
    )
    if os.environ.get("SALESPULSE_ALLOW_MISSING_TOOLS") == "1":
        pytest.skip(message)
    pytest.fail(message)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )


# -- a reader for the YAML subset of the alerting rules ----------------------------


@dataclass
class Rule:
    kind: str  # "alert" or "record"
    name: str
    line: int
    fields: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{ALERT_RULES.name}:{self.line} {self.name}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _plain(value: str) -> str:
    """A one-line scalar: quoted ('' and \\" unescaped) or plain."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def _value(lines: list[str], index: int, raw: str) -> tuple[str, int]:
    """The scalar starting on lines[index] (inline or a block) and the index after it."""
    raw = raw.strip()
    if not raw.startswith(("|", ">")):
        return _plain(raw), index + 1
    own = _indent(lines[index])
    body: list[str] = []
    end = index + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > own):
        body.append(lines[end].strip())
        end += 1
    joined = "\n".join(body) if raw.startswith("|") else " ".join(part for part in body if part)
    return joined.strip(), end


def _pair(stripped: str) -> tuple[str, str] | None:
    key, colon, value = stripped.partition(":")
    if not colon or not key or " " in key or key.startswith("#"):
        return None
    return key, value


def read_rules(path: Path) -> list[Rule]:
    """Every `- alert:`/`- record:` item of a rule file with its fields, labels and annotations."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rules: list[Rule] = []
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if not stripped.startswith(("- alert:", "- record:")):
            index += 1
            continue
        item_indent = _indent(lines[index])
        kind, _, raw = stripped[2:].partition(":")
        name, index = _value(lines, index, raw)
        rule = Rule(kind, name, index)
        mapping: dict[str, str] | None = None
        mapping_indent = 0
        while index < len(lines) and (
            not lines[index].strip() or _indent(lines[index]) > item_indent
        ):
            line = lines[index]
            pair = _pair(line.strip())
            if pair is None:
                index += 1
                continue
            key, raw = pair
            if mapping is not None and _indent(line) > mapping_indent:
                mapping[key], index = _value(lines, index, raw)
                continue
            mapping = None
            if key in {"labels", "annotations"} and not raw.strip():
                mapping = rule.labels if key == "labels" else rule.annotations
                mapping_indent = _indent(line)
                index += 1
                continue
            rule.fields[key], index = _value(lines, index, raw)
        rules.append(rule)
    return rules


def alert_rules() -> list[Rule]:
    return [rule for rule in read_rules(ALERT_RULES) if rule.kind == "alert"]


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", RUNBOOK.read_text(encoding="utf-8"), re.M)
    return {github_anchor(heading) for heading in headings}


# -- promtool ------------------------------------------------------------------------


def test_alert_files_exist() -> None:
    assert ALERT_RULES.is_file(), ALERT_RULES
    assert ALERT_TESTS, "no salespulse-alerts*.test.yml promtool test file"
    assert alert_rules(), "the reader found no alerting rule"


def test_promtool_check_rules() -> None:
    promtool = require_tool("promtool", package="prometheus")
    result = run(promtool, "check", "rules", "--lint=all", "--lint-fatal", str(ALERT_RULES))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool check rules {ALERT_RULES.name}:\n{output}"
    count = len(read_rules(ALERT_RULES))
    assert f"{count} rules found" in output, (
        f"the YAML reader of this test found {count} rules, promtool:\n{output}"
    )


@pytest.mark.parametrize("path", ALERT_TESTS, ids=lambda path: path.name)
def test_promtool_test_rules(path: Path) -> None:
    promtool = require_tool("promtool", package="prometheus")
    result = run(promtool, "test", "rules", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool test rules {path.name}:\n{output}"


# -- shape of the alerts ---------------------------------------------------------------


def test_alerts_are_named_and_labelled() -> None:
    problems: list[str] = []
    for rule in alert_rules():
        if not re.fullmatch(r"Salespulse[A-Z][A-Za-z]+", rule.name):
            problems.append(f"{rule.where}: name must be Salespulse<CamelCase>")
        if rule.labels.get("severity") not in SEVERITIES:
            problems.append(f"{rule.where}: severity must be one of {sorted(SEVERITIES)}")
        if rule.labels.get("component") not in COMPONENTS:
            problems.append(f"{rule.where}: component must be one of {sorted(COMPONENTS)}")
        if not rule.fields.get("expr"):
            problems.append(f"{rule.where}: no expr")
        if str(rule.fields.get("for", "0s")).strip() in {"0", "0s", "0m", ""}:
            # One bad evaluation (a scrape cut short, a restart) must not page.
            problems.append(f"{rule.where}: no `for:` (or `for: 0s`)")
        for annotation in REQUIRED_ANNOTATIONS:
            if not rule.annotations.get(annotation):
                problems.append(f"{rule.where}: no {annotation} annotation")
    assert not problems, "\n".join(problems)


def test_alert_names_are_unique() -> None:
    names = [rule.name for rule in alert_rules()]
    assert len(names) == len(set(names)), sorted(names)


def test_kpi_descriptions_name_the_manager_or_team_and_the_number() -> None:
    problems: list[str] = []
    for rule in alert_rules():
        if rule.labels.get("component") != "kpi":
            continue
        description = rule.annotations.get("description", "")
        if "$labels.name" not in description and "$labels.team" not in description:
            problems.append(f"{rule.where}: description names neither manager nor team")
        if "$value" not in description:
            problems.append(f"{rule.where}: description does not give $value")
    assert not problems, "\n".join(problems)


def test_runbook_urls_point_at_runbook_headings() -> None:
    anchors = runbook_anchors()
    problems: list[str] = []
    for rule in alert_rules():
        url = rule.annotations.get("runbook_url", "")
        if not url.startswith(RUNBOOK_BASE):
            problems.append(f"{rule.where}: runbook_url {url!r} does not start with {RUNBOOK_BASE}")
            continue
        anchor = url[len(RUNBOOK_BASE) :]
        if anchor not in anchors:
            problems.append(f"{rule.where}: no heading in {RUNBOOK.name} has the anchor #{anchor}")
        if anchor != rule.name.lower():
            problems.append(f"{rule.where}: anchor #{anchor} is not the alert name in lower case")
    assert not problems, "\n".join(problems)


def test_github_anchor() -> None:
    assert github_anchor("SalespulseProcessorDown") == "salespulseprocessordown"
    assert github_anchor("What to do, now?") == "what-to-do-now"
    assert github_anchor("lag_messages (per topic)") == "lag_messages-per-topic"


def alert_test_cases() -> dict[str, dict[str, int]]:
    """Per alert name: how many promtool cases expect it firing and how many expect none."""
    cases: dict[str, dict[str, int]] = {}
    for path in ALERT_TESTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"\s*- alertname:\s*(\S+)", line)
            if not match:
                continue
            counts = cases.setdefault(match.group(1), {"fires": 0, "quiet": 0})
            following = (candidate.strip() for candidate in lines[index + 1 :])
            exp = next((text for text in following if text.startswith("exp_alerts:")), "")
            counts["quiet" if exp.replace(" ", "") == "exp_alerts:[]" else "fires"] += 1
    return cases


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = alert_test_cases()
    problems = []
    for rule in alert_rules():
        counts = cases.get(rule.name, {"fires": 0, "quiet": 0})
        if not counts["fires"]:
            problems.append(f"{rule.name}: no promtool case where it fires")
        if not counts["quiet"]:
            problems.append(f"{rule.name}: no promtool case where it does not fire")
    assert not problems, "\n".join(problems)


# -- Alertmanager ----------------------------------------------------------------------


def test_amtool_check_config() -> None:
    amtool = require_tool("amtool", package="prometheus-alertmanager")
    result = run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"amtool check-config:\n{output}"
    assert "SUCCESS" in output, output


@dataclass(frozen=True)
class RouteTest:
    line: int
    labels: tuple[str, ...]
    receivers: tuple[str, ...]

    def __str__(self) -> str:
        return f"{ROUTE_TESTS.name}:{self.line} {' '.join(self.labels)}"


def read_route_tests() -> list[RouteTest]:
    tests: list[RouteTest] = []
    for number, line in enumerate(ROUTE_TESTS.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        labels, arrow, receivers = text.rpartition("->")
        assert arrow, f"{ROUTE_TESTS.name}:{number}: no '->' in {text!r}"
        expected = tuple(sorted(name.strip() for name in receivers.split(",") if name.strip()))
        tests.append(RouteTest(number, tuple(shlex.split(labels)), expected))
    return tests


def route(amtool: str, labels: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The receivers amtool resolves for a label set, sorted."""
    result = run(
        amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"amtool config routes test {' '.join(labels)}:\n{output}"
    printed = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    assert printed, f"amtool printed no receiver for {' '.join(labels)}:\n{output}"
    return tuple(sorted(name.strip() for name in printed[-1].split(",")))


ROUTE_CASES = read_route_tests() if ROUTE_TESTS.is_file() else []


def test_route_tests_exist_and_cover_every_receiver() -> None:
    assert ROUTE_CASES, f"no route tests in {ROUTE_TESTS}"
    config = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    receivers_section = config[config.index("\nreceivers:") :]
    receivers = set(re.findall(r"^\s*- name:\s*(\S+)", receivers_section, re.M))
    assert receivers, "no receivers found in alertmanager.yml"
    expected = {name for case in ROUTE_CASES for name in case.receivers}
    assert receivers <= expected, f"receivers no route test reaches: {sorted(receivers - expected)}"


@pytest.mark.parametrize("case", ROUTE_CASES, ids=str)
def test_route(case: RouteTest) -> None:
    amtool = require_tool("amtool", package="prometheus-alertmanager")
    got = route(amtool, case.labels)
    assert got == case.receivers, f"{case}: expected {case.receivers}, amtool: {got}"


def test_every_alert_reaches_its_receiver() -> None:
    """Each alert's own labels (a KPI alert for team North) route by severity and component."""
    amtool = require_tool("amtool", package="prometheus-alertmanager")
    problems = []
    for rule in alert_rules():
        severity, component = rule.labels.get("severity", ""), rule.labels.get("component", "")
        labels = [f"alertname={rule.name}", *(f"{k}={v}" for k, v in rule.labels.items())]
        if component == "kpi":
            labels += ["team=North", "manager=m-01"]
        expected = EXPECTED_RECEIVER.get((severity, component))
        got = route(amtool, labels)
        if got != (expected,):
            problems.append(f"{rule.name} ({severity}, {component}): {got}, expected {expected}")
    assert not problems, "\n".join(problems)


# -- inhibition, on a private Alertmanager ---------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _http(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    return json.loads(text) if text.strip() else None


@contextmanager
def private_alertmanager(
    binary: str, tmp_path: Path, text: str | None = None, *, log_level: str = "info"
) -> Iterator[str]:
    """A private Alertmanager on the real configuration, its receivers pointed at a closed port.

    `text` replaces the configuration (a rewrite of the real one); its log is
    tmp_path/alertmanager.log.
    """
    if text is None:
        text = re.sub(
            r"http://127\.0\.0\.1:\d+/", "http://127.0.0.1:9/", ALERTMANAGER_CONFIG.read_text()
        )
    config = tmp_path / "alertmanager.yml"
    config.write_text(text, encoding="utf-8")
    port = _free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--log.level={log_level}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(
                        "Alertmanager did not start:\n"
                        + (tmp_path / "alertmanager.log").read_text()
                    )
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


KPI_ALERTS = [
    {"alertname": "SalespulseOverdueRateAboveTarget", "severity": "page", "component": "kpi",
     "team": "North", "manager": "m-01", "name": "Jonas Becker", "window": "week"},
    {"alertname": "SalespulseCallDurationAboveTarget", "severity": "ticket", "component": "kpi",
     "team": "South", "manager": "m-02", "name": "Sabine Krause", "window": "week"},
    {"alertname": "SalespulseRegulationsMissed", "severity": "ticket", "component": "kpi",
     "manager": "u8", "name": "u8"},
    {"alertname": "SalespulseDelinquencySpike", "severity": "page", "component": "kpi",
     "team": "North", "window": "day"},
]  # fmt: skip
OTHER_PROCESSOR_ALERT = {
    "alertname": "SalespulseDeadLettersRising", "severity": "ticket", "component": "processor",
    "topic": "crm.deals", "reason": "schema_violation",
}  # fmt: skip


def _states(url: str) -> dict[str, str]:
    alerts = _http(f"{url}/api/v2/alerts")
    return {alert["labels"]["alertname"]: alert["status"]["state"] for alert in alerts}


def _await_states(url: str, expected: dict[str, str], timeout: float = 10) -> dict[str, str]:
    """The alert states once they equal `expected`, or as they are after `timeout` seconds.

    The inhibitor learns about new alerts asynchronously, shortly after they are posted.
    """
    deadline = time.monotonic() + timeout
    while True:
        states = _states(url)
        if states == expected or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


@pytest.mark.parametrize(
    "source",
    [
        {"alertname": "SalespulseProcessorDown", "severity": "page", "component": "processor",
         "job": "salespulse", "instance": "w1:9820"},
        {"alertname": "SalespulseWorkerNotReady", "severity": "page", "component": "processor",
         "job": "salespulse", "instance": "w2:9820"},
    ],
    ids=lambda source: source["alertname"],
)  # fmt: skip
def test_processor_alerts_inhibit_manager_and_team_alerts(
    tmp_path: Path, source: dict[str, str]
) -> None:
    binary = require_tool(
        "alertmanager", "prometheus-alertmanager", package="prometheus-alertmanager"
    )
    with private_alertmanager(binary, tmp_path) as url:
        others = [*KPI_ALERTS, OTHER_PROCESSOR_ALERT]
        _http(f"{url}/api/v2/alerts", [{"labels": labels} for labels in others])
        active = {labels["alertname"]: "active" for labels in others}
        before = _await_states(url, active)
        assert before == active, "inhibited or missing with no processor alert firing"

        _http(f"{url}/api/v2/alerts", [{"labels": source}])
        expected = active | {labels["alertname"]: "suppressed" for labels in KPI_ALERTS}
        expected[source["alertname"]] = "active"
        assert _await_states(url, expected) == expected


# -- sales hours: KPI notifications only in business hours -------------------------------


def _sales_hours_lines(lines: list[str]) -> tuple[int, int]:
    """Line indices [start, end) of the definition of the sales-hours interval, after its name."""
    top = lines.index("time_intervals:")
    for index in range(top + 1, len(lines)):
        line = lines[index]
        if line.strip() and not line.startswith((" ", "#")):
            break  # the next top-level key
        if line.strip() == f"- name: {SALES_HOURS}":
            end = index + 1
            while end < len(lines) and (
                not lines[end].strip() or _indent(lines[end]) > _indent(line)
            ):
                end += 1
            while not lines[end - 1].strip():
                end -= 1
            return index + 1, end
    raise AssertionError(
        f"no time interval {SALES_HOURS} under time_intervals: in alertmanager.yml"
    )


def sales_hours_entries(config: str) -> list[str]:
    """The text of each entry of the sales-hours interval's own time_intervals list."""
    lines = config.splitlines()
    start, end = _sales_hours_lines(lines)
    items = [index for index in range(start, end) if lines[index].lstrip().startswith("- ")]
    assert items, f"the time interval {SALES_HOURS} has no entries"
    item_indent = _indent(lines[items[0]])
    items = [index for index in items if _indent(lines[index]) == item_indent]
    return ["\n".join(lines[a:b]) for a, b in zip(items, [*items[1:], end], strict=True)]


def sales_hours_location(config: str) -> str:
    """The one location of the sales-hours interval; every entry must name it."""
    locations = []
    for entry in sales_hours_entries(config):
        match = re.search(r"^[\s-]*location:\s*(.+?)\s*$", entry, re.M)
        assert match, f"an entry of {SALES_HOURS} has no location (so it is in UTC):\n{entry}"
        locations.append(_plain(match.group(1)))
    assert len(set(locations)) == 1, f"{SALES_HOURS} entries in several locations: {locations}"
    return locations[0]


def with_sales_hours(config: str, entries: list[dict[str, Any]]) -> str:
    """`config` with the sales-hours interval replaced by `entries` (JSON is YAML)."""
    lines = config.splitlines()
    start, end = _sales_hours_lines(lines)
    indent = " " * _indent(lines[start])
    lines[start:end] = [f"{indent}time_intervals: {json.dumps(entries)}"]
    return "\n".join(lines) + "\n"


def interval_entries(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Time-interval entries covering [start, end) in their time zone, split at midnight.

    Both ends are aware datetimes in the same ZoneInfo, on whole minutes.
    """
    entries: list[dict[str, Any]] = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day < end:
        next_day = day + timedelta(days=1)
        low, high = max(start, day), min(end, next_day)
        if low < high:
            end_time = "24:00" if high == next_day else high.strftime("%H:%M")
            entries.append(
                {
                    "weekdays": [low.strftime("%A").lower()],
                    "times": [{"start_time": low.strftime("%H:%M"), "end_time": end_time}],
                    "location": str(start.tzinfo),
                }
            )
        day = next_day
    return entries


def test_interval_entries_split_at_midnight() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 1, 2, 23, 30, tzinfo=berlin)  # a Friday
    assert interval_entries(start, start + timedelta(hours=1)) == [
        {"weekdays": ["friday"], "times": [{"start_time": "23:30", "end_time": "24:00"}],
         "location": "Europe/Berlin"},
        {"weekdays": ["saturday"], "times": [{"start_time": "00:00", "end_time": "00:30"}],
         "location": "Europe/Berlin"},
    ]  # fmt: skip


def test_sales_hours_are_in_the_company_timezone() -> None:
    """The interval's location is the timezone salespulse computes its days and weeks in."""
    company = tomllib.loads(COMPANY_CONFIG.read_text(encoding="utf-8"))
    location = sales_hours_location(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    assert location == company["timezone"], (
        f"alertmanager.yml: {SALES_HOURS} is in {location}, "
        f"{COMPANY_CONFIG.relative_to(ROOT)} has timezone = {company['timezone']!r}"
    )


def test_routes_are_time_bounded_by_the_sales_hours_only() -> None:
    """Every active_time_intervals is [sales-hours], the interval the test below rewrites."""
    config = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    named = re.findall(r"^\s*active_time_intervals:\s*\[(.*)\]\s*$", config, re.M)
    assert named, "no route has active_time_intervals"
    assert {names.strip() for names in named} == {SALES_HOURS}, named
    assert not re.search(r"^\s*mute_time_intervals:", config, re.M), "muted routes: test them"


# Per receiver, one alert that reaches it: the KPI ones only in sales hours.
KPI_DELIVERIES = [
    ("team-north-pager", {"alertname": "SalespulseOverdueRateAboveTarget", "severity": "page",
                          "component": "kpi", "team": "North", "manager": "m-01"}),
    ("team-south-pager", {"alertname": "SalespulseDelinquencySpike", "severity": "page",
                          "component": "kpi", "team": "South", "window": "day"}),
    ("team-key-accounts-pager", {"alertname": "SalespulseOverdueRateAboveTarget",
                                 "severity": "page", "component": "kpi", "team": "Key Accounts",
                                 "manager": "m-03"}),
    ("sales-ops-pager", {"alertname": "SalespulseOverdueRateAboveTarget", "severity": "page",
                         "component": "kpi", "manager": "u8"}),
    ("salespulse-tickets", {"alertname": "SalespulseCallDurationAboveTarget", "severity": "ticket",
                            "component": "kpi", "team": "South", "manager": "m-02"}),
]  # fmt: skip
ANY_HOUR_DELIVERIES = [
    ("sre-pager", {"alertname": "SalespulseConsumerLagGrowing", "severity": "page",
                   "component": "processor", "topic": "crm.tasks"}),
    ("sre-tickets", OTHER_PROCESSOR_ALERT),
    ("salespulse-tickets", {"alertname": "SomethingElse", "severity": "ticket"}),
]  # fmt: skip
NOT_ACTIVE = "route is not within active time"  # Alertmanager's debug log, per muted flush


def _delivered(receiver: WebhookReceiver) -> set[tuple[str, str]]:
    """(receiver, alertname) of every firing alert posted to the webhook receiver so far."""
    return {
        (path.rsplit("/", 1)[-1], alert["labels"]["alertname"])
        for path, body in list(receiver.received)
        for alert in body.get("alerts", [])
        if alert.get("status") == "firing"
    }


def _await_deliveries(
    receiver: WebhookReceiver,
    expected: set[tuple[str, str]],
    *,
    log: Path | None = None,
    muted_flushes: int = 0,
    timeout: float = 30,
) -> set[tuple[str, str]]:
    """What was delivered once it includes `expected` (and `log` shows `muted_flushes` muted
    flushes), or as it is after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        delivered = _delivered(receiver)
        muted = log.read_text().count(NOT_ACTIVE) if log is not None else 0
        if (delivered >= expected and muted >= muted_flushes) or time.monotonic() > deadline:
            return delivered
        time.sleep(0.1)


@pytest.mark.parametrize("inside", [True, False], ids=["inside", "outside"])
def test_kpi_notifications_only_in_sales_hours(tmp_path: Path, inside: bool) -> None:
    """A real Alertmanager with sales hours around now (or 12 hours away), in the company's zone.

    Inside, every alert is delivered; outside, the processor alerts and an
    alert of no component are, the KPI alerts are not. amtool's route tests do
    not evaluate time intervals, so this runs the real thing. The window is an
    hour around now in the configured location, so an Alertmanager that read
    the times as UTC would not deliver the KPI alerts inside (for any zone
    more than half an hour off UTC, as Europe/Berlin is).
    """
    binary = require_tool(
        "alertmanager", "prometheus-alertmanager", package="prometheus-alertmanager"
    )
    original = ALERTMANAGER_CONFIG.read_text(encoding="utf-8")
    assert PLACEHOLDER_HOOKS in original, "the receivers are no longer the placeholder webhooks"
    zone = ZoneInfo(sales_hours_location(original))
    now = datetime.now(zone).replace(second=0, microsecond=0)
    middle = now if inside else now + timedelta(hours=12)
    start = middle - timedelta(minutes=30)
    entries = interval_entries(start, start + timedelta(minutes=61))

    receiver = WebhookReceiver()
    text = with_sales_hours(original.replace(PLACEHOLDER_HOOKS, receiver.url), entries)
    text = re.sub(r"(?m)^(\s+group_wait:)\s*\S+", r"\1 1s", text)
    text = re.sub(r"(?m)^(\s+group_interval:)\s*\S+", r"\1 1s", text)
    log = tmp_path / "alertmanager.log"
    try:
        with private_alertmanager(binary, tmp_path, text, log_level="debug") as url:
            alerts = [labels for _, labels in [*KPI_DELIVERIES, *ANY_HOUR_DELIVERIES]]
            _http(f"{url}/api/v2/alerts", [{"labels": labels} for labels in alerts])
            any_hour = {(name, labels["alertname"]) for name, labels in ANY_HOUR_DELIVERIES}
            kpi = {(name, labels["alertname"]) for name, labels in KPI_DELIVERIES}
            if inside:
                got = _await_deliveries(receiver, any_hour | kpi)
                assert got == any_hour | kpi, f"sales hours {entries}, now {datetime.now(zone)}"
            else:
                # Until what goes out at any hour is delivered and each KPI group was
                # flushed (and dropped) about twice: had they been sent, they would be here.
                flushes = 2 * len(kpi)
                got = _await_deliveries(receiver, any_hour, log=log, muted_flushes=flushes)
                assert got == any_hour, f"sales hours {entries}, now {datetime.now(zone)}"
                assert log.read_text().count(NOT_ACTIVE) >= flushes, "no KPI group was muted"
    finally:
        receiver.stop()
