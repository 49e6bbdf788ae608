"""What the rules may cost: every `expr` parsed by a real PromQL parser and its selectors walked.

A range over raw series reads every sample of every series it selects, at every
evaluation: `increase(salespulse_x_total[30d])` over a company's funnel is
series x 172,800 samples each time the rule runs. So a range (a matrix
selector's, and those of subqueries around a selector) over raw exported series
(`salespulse_...`) may be at most an hour; a difference over a longer period
reads two samples a series instead: `x - x offset 30d`. Recorded series
(`level:metric:operations`) are few and may be read over longer ranges, up to
a sanity cap of 8 days (a week-ago baseline and then some).

The raw selectors read through an offset are listed (tests/integration/
test_rule_cost.py backfills history for them and runs the rules on it).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import promql_parser

from tests.support.promql import (
    MAX_RAW_RANGE,
    Rule,
    Selector,
    all_rules,
    metric_names,
    parse,
    range_violations,
    raw_offset_selectors,
    read_yaml,
    reads,
    rule_files,
)


def _rule(expr: str, kind: str = "record", for_: str | None = None) -> Rule:
    return Rule(Path("self-test.yml"), 1, "self_test", None, kind, "a:b:c", expr, for_)


def test_there_are_rule_files() -> None:
    assert rule_files(), "no rule files in deploy/prometheus/rules"
    assert all_rules(), "the reader found no rule"


def test_every_expression_parses() -> None:
    bad = []
    for rule in all_rules():
        try:
            parse(rule.expr)
        except ValueError as error:
            bad.append(f"{rule.where}: {error}")
    assert not bad, "expressions the PromQL parser rejects:\n" + "\n".join(bad)


def test_no_range_over_raw_series_longer_than_an_hour() -> None:
    bad = [
        f"{rule.where}: {problem}"
        for rule in all_rules()
        for problem in range_violations(rule.expr)
    ]
    assert not bad, (
        "ranges too long (read `x - x offset 30d`, or record the series first):\n" + "\n".join(bad)
    )


def test_raw_series_read_through_an_offset_read_one_sample() -> None:
    """Every raw selector with an offset: listed (-s shows them); an offset must look
    back, not ahead, and a range under it is held to the hour like any other."""
    rules = all_rules()
    offsets = raw_offset_selectors(rules)
    print("raw selectors read through an offset:", *sorted(map(str, offsets)), sep="\n  ")
    bad = [
        f"{rule.where}: {read.selector} offset {read.offset} over {read.range}"
        for rule in rules
        for read in reads(rule.expr)
        if read.selector in offsets
        and (read.offset < timedelta(0) or read.range > MAX_RAW_RANGE or read.at)
    ]
    assert not bad, "offset reads of raw series that do not read one recent sample:\n" + "\n".join(
        bad
    )


def test_every_alert_waits_for_a_while() -> None:
    """An alert without `for:` fires on the first evaluation that crosses its line, so
    one bad scrape pages somebody."""
    bad = []
    for rule in all_rules():
        if rule.kind != "alert":
            continue
        if rule.for_ is None:
            bad.append(f"{rule.where}: no `for:`")
        elif promql_parser.parse_duration(rule.for_) <= timedelta(0):
            bad.append(f"{rule.where}: for: {rule.for_}")
    assert not bad, "alerting rules without a positive `for:`:\n" + "\n".join(bad)


# -- self-tests ---------------------------------------------------------------------


def test_lint_catches_a_month_long_range_and_accepts_an_offset_difference() -> None:
    assert range_violations("increase(salespulse_x_total[30d])") == [
        "salespulse_x_total read over 30d (at most 1h over a raw series)"
    ]
    accepted = "salespulse_x_total - salespulse_x_total offset 30d"
    assert range_violations(accepted) == []
    assert raw_offset_selectors([_rule(accepted)]) == {Selector("salespulse_x_total", ())}


def test_lint_walks_subqueries_functions_and_aggregations() -> None:
    assert range_violations("rate(salespulse_x_total[5m]) and changes(salespulse_y[1h])") == []
    subquery = 'max_over_time(sum by (m) (rate(salespulse_x_total{a="b"}[5m]))[1h:1m])'
    assert range_violations(subquery) == [
        'salespulse_x_total{a="b"} read over 1h5m (at most 1h over a raw series)'
    ]
    assert range_violations("avg_over_time(a:b:c[1d]) > 2 * avg_over_time(a:b:c[7d])") == []
    assert range_violations("avg_over_time(a:b:c[9d])") == [
        "a:b:c read over 9d (at most 8d over a recorded series)"
    ]
    nameless = 'topk(3, sum_over_time({__name__=~"salespulse_.*"}[2h]))'
    assert len(range_violations(nameless)) == 1
    [read] = reads('label_replace(salespulse_x{a!~"b|c"} offset 1d, "d", "$1", "a", "(.*)")')
    assert read.offset == timedelta(days=1)
    assert read.range == timedelta(0)
    assert read.selector.matches("salespulse_x", {"a": "e"})
    assert not read.selector.matches("salespulse_x", {"a": "b"})


def test_metric_names_are_those_selected_by_name() -> None:
    expr = """
        sum by (manager, window) (salespulse_period_calls{answered="true", x="}"})
      / on (team) group_left (name)
        (label_replace(a:b:c, "previous_stage", "$1", "stage", "(.*)") > bool 0)
      or increase(salespulse_calls_total[30d] offset 1h) # not_a_metric
      or count({__name__=~"salespulse_.*"}) or {__name__="up"}
    """
    assert metric_names(expr) == {
        "salespulse_period_calls",
        "a:b:c",
        "salespulse_calls_total",
        "up",
    }


def test_reader_reads_the_yaml_subset_of_rule_files() -> None:
    text = """
groups:
  # a comment
  - name: g
    interval: 30s
    rules:
      - record: a:b:c
        expr: |
          sum by (m) (salespulse_x)  # not: a key
            - 1
      - alert: Quick
        expr: a:b:c > 1
        labels: {severity: page}
        annotations:
          summary: 'It is: {{ $value }}'
          description: >-
            several
            lines
      - alert: Slow
        expr: >
          a:b:c
          > 2
        for: 15m
"""
    document = read_yaml(text)
    [group] = document["groups"]
    assert group["name"] == "g"
    assert group["interval"] == "30s"
    record, quick, slow = group["rules"]
    assert record["expr"] == "sum by (m) (salespulse_x)  # not: a key\n  - 1\n"
    assert quick["annotations"]["summary"] == "It is: {{ $value }}"
    assert quick["annotations"]["description"] == "several lines"
    assert "for" not in quick
    assert slow["expr"] == "a:b:c > 2"
    assert slow["for"] == "15m"
