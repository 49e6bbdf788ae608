"""The project's Prometheus rules, read from their files and parsed with a real PromQL parser.

Rule files are read with a small reader of the YAML subset they are written in
(block mappings and sequences, plain, quoted and block scalars; PyYAML is not a
dependency of the project). Every ``expr`` is parsed by ``promql-parser`` (the
Rust parser of the GreptimeDB project, compatible with Prometheus 2.45's
PromQL), and :func:`reads` walks the syntax tree for every series selector: which
metric and label matchers, over how long a range (a matrix selector's range plus
those of the subqueries around it) and through which offset.

The rule tests, the rule lint and the dashboard tests all read PromQL through
this module (dashboards fill in their Grafana variables first, see
tests/support/dashboards.py).

Naming: recorded series are ``level:metric:operations`` (a colon in the name);
every other selector reads raw series, exported by the processor
(``salespulse_...``) or by Prometheus itself (``up``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import promql_parser

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "deploy" / "prometheus" / "rules"
RULE_TESTS_DIR = REPO / "deploy" / "prometheus" / "tests"
EXPORTED_PREFIX = "salespulse_"


# -- a reader for the YAML subset of rule files -------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    number: int  # 1-based
    indent: int
    text: str  # without the indentation


class YamlSubsetError(ValueError):
    pass


def _lines(text: str) -> list[_Line]:
    return [
        _Line(number, len(raw) - len(raw.lstrip(" ")), raw.strip(" "))
        for number, raw in enumerate(text.splitlines(), 1)
    ]


def _is_content(line: _Line) -> bool:
    return bool(line.text) and not line.text.startswith("#")


def _split_key(text: str) -> tuple[str, str] | None:
    """``key: value`` -> (key, value); None when the line is not a mapping entry."""
    if text.startswith(("'", '"', "[", "{")):
        return None
    match = re.match(r"([^\s:#][^:#]*?)\s*:(?:\s+|$)(.*)$", text)
    if match is None:
        return None
    return match.group(1), match.group(2)


def _strip_comment(value: str) -> str:
    """A plain scalar without its trailing `` # comment``."""
    match = re.search(r"\s#", value)
    return (value[: match.start()] if match else value).strip()


def _unquote(value: str, line: _Line) -> str:
    if value.startswith("'"):
        end = value.rfind("'")
        if end == 0:
            raise YamlSubsetError(f"line {line.number}: unterminated quote")
        return value[1:end].replace("''", "'")
    if value.startswith('"'):
        end = value.rfind('"')
        if end == 0:
            raise YamlSubsetError(f"line {line.number}: unterminated quote")
        body = value[1:end]
        escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/"}
        return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), body)
    return _strip_comment(value)


class _Reader:
    def __init__(self, text: str) -> None:
        self.lines = _lines(text)
        self.index = 0

    def _skip_blank(self) -> None:
        while self.index < len(self.lines) and not _is_content(self.lines[self.index]):
            self.index += 1

    def _peek(self) -> _Line | None:
        self._skip_blank()
        return self.lines[self.index] if self.index < len(self.lines) else None

    def node(self, indent: int) -> Any:
        """The node whose first line is the next content line, indented by *indent*."""
        line = self._peek()
        if line is None or line.indent < indent:
            return None
        if line.text == "-" or line.text.startswith("- "):
            return self._sequence(line.indent)
        if _split_key(line.text) is not None:
            return self._mapping(line.indent)
        self.index += 1
        return self._continued(_unquote(line.text, line), line, line.indent - 1)

    def _sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while (line := self._peek()) is not None and line.indent == indent:
            if not (line.text == "-" or line.text.startswith("- ")):
                break
            rest = line.text[1:].lstrip(" ")
            if not rest:
                self.index += 1
                items.append(self.node(indent + 1))
                continue
            # The item's first line, re-indented to where its content starts.
            self.lines[self.index] = _Line(line.number, len(line.text) - len(rest) + indent, rest)
            items.append(self.node(self.lines[self.index].indent))
        return items

    def _mapping(self, indent: int) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        while (line := self._peek()) is not None and line.indent == indent:
            pair = _split_key(line.text)
            if pair is None:
                raise YamlSubsetError(f"line {line.number}: expected `key: value`: {line.text}")
            key, value = pair
            self.index += 1
            mapping[key] = self._value(value, line, indent)
            if key in {"record", "alert"}:
                mapping.setdefault("__line__", line.number)
        if (line := self._peek()) is not None and line.indent > indent:
            raise YamlSubsetError(f"line {line.number}: unexpected indentation: {line.text}")
        return mapping

    def _value(self, value: str, line: _Line, indent: int) -> Any:
        if value.startswith(("|", ">")) and _strip_comment(value[1:].lstrip("+-0123456789")) == "":
            return self._block_scalar(value, indent)
        if value.startswith(("[", "{")):
            return self._flow(value, line, indent)
        if value == "" or value.startswith("#"):
            following = self._peek()
            if following is None:
                return None
            if following.indent > indent:
                return self.node(following.indent)
            if following.indent == indent and following.text.startswith("- "):
                return self._sequence(indent)  # a sequence may sit at its key's indentation
            return None
        return self._continued(_unquote(value, line), line, indent)

    def _continued(self, value: str, line: _Line, indent: int) -> str:
        """A plain or quoted scalar that continues on more indented lines (folded)."""
        parts = [value]
        while (
            self.index < len(self.lines)
            and (following := self.lines[self.index]).indent > indent
            and _is_content(following)
            and _split_key(following.text) is None
            and not following.text.startswith("- ")
        ):
            parts.append(_strip_comment(following.text))
            self.index += 1
        return " ".join(part for part in parts if part)

    def _block_scalar(self, header: str, indent: int) -> str:
        body: list[str] = []
        content_indent: int | None = None
        while self.index < len(self.lines):
            line = self.lines[self.index]
            if line.text and line.indent <= indent:
                break
            if line.text:
                content_indent = line.indent if content_indent is None else content_indent
                body.append(" " * (line.indent - content_indent) + line.text)
            else:
                body.append("")
            self.index += 1
        while body and not body[-1]:
            body.pop()
        if header.startswith(">"):  # folded: good enough for annotations, which no test reads
            return " ".join(part.strip() for part in body if part.strip())
        return "\n".join(body) + ("" if "-" in header else "\n")

    def _flow(self, value: str, line: _Line, indent: int) -> str:
        """A flow collection, kept as its text (the rules need none of their contents)."""
        text = _strip_comment(value)
        depth = sum(text.count(c) for c in "[{") - sum(text.count(c) for c in "]}")
        while depth > 0 and self.index < len(self.lines):
            following = self.lines[self.index]
            self.index += 1
            text += " " + _strip_comment(following.text)
            depth = sum(text.count(c) for c in "[{") - sum(text.count(c) for c in "]}")
        if depth:
            raise YamlSubsetError(f"line {line.number}: unterminated flow collection")
        return text


def read_yaml(text: str) -> Any:
    """The document, for the subset of YAML the rule files use."""
    reader = _Reader(text)
    document = reader.node(0)
    line = reader._peek()
    if line is not None:
        raise YamlSubsetError(f"line {line.number}: not read: {line.text}")
    return document


# -- rules --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    path: Path
    line: int
    group: str
    interval: str | None
    kind: str  # "record" or "alert"
    name: str
    expr: str
    for_: str | None

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line} {self.group}/{self.name}"


def read_rules(path: Path) -> list[Rule]:
    document = read_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or not isinstance(document.get("groups"), list):
        raise YamlSubsetError(f"{path}: no `groups:` list")
    rules: list[Rule] = []
    for group in document["groups"]:
        for entry in group.get("rules") or []:
            kind = "record" if "record" in entry else "alert"
            rules.append(
                Rule(
                    path=path,
                    line=int(entry.get("__line__", 0)),
                    group=str(group["name"]),
                    interval=group.get("interval"),
                    kind=kind,
                    name=str(entry[kind]),
                    expr=str(entry.get("expr", "")),
                    for_=entry.get("for"),
                )
            )
    return rules


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted(RULE_TESTS_DIR.glob("*.yml"))


def rule_test_expressions(path: Path) -> list[str]:
    """The ``expr`` of every ``promql_expr_test`` in a promtool rule test file."""
    document = read_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or not isinstance(document.get("tests"), list):
        raise YamlSubsetError(f"{path}: no `tests:` list")
    return [
        str(case["expr"])
        for test in document["tests"]
        for case in test.get("promql_expr_test") or []
    ]


def all_rules(paths: Iterable[Path] | None = None) -> list[Rule]:
    return [
        rule for path in (rule_files() if paths is None else paths) for rule in read_rules(path)
    ]


# -- selectors and what they read ---------------------------------------------------


class PromQLWalkError(TypeError):
    pass


Matcher = tuple[str, str, str]  # (label, op, value); op is one of = != =~ !~

# MatchOp members compare equal but do not hash.
_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _op(op: promql_parser.MatchOp) -> str:
    for member, text in _OPS:
        if op == member:
            return text
    raise PromQLWalkError(f"unknown label matcher operator {op!r}")


@dataclass(frozen=True, slots=True)
class Selector:
    """A series selector: the metric name (if given as one) and its label matchers."""

    name: str | None
    matchers: tuple[Matcher, ...]

    @property
    def metric(self) -> str | None:
        """The metric name, given as a name or as ``__name__="..."``."""
        if self.name is not None:
            return self.name
        for label, op, value in self.matchers:
            if label == "__name__" and op == "=":
                return value
        return None

    @property
    def recorded(self) -> bool:
        """Reads a recorded series (``level:metric:operations``)."""
        return self.metric is not None and ":" in self.metric

    @property
    def exported(self) -> bool:
        """Reads series the processor exports, or may (a name pattern counts as may)."""
        return self.metric is None or self.metric.startswith(EXPORTED_PREFIX)

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        """Whether this selector selects the series *name*{*labels*}, as Prometheus would."""
        if self.name is not None and self.name != name:
            return False
        for label, op, value in self.matchers:
            actual = name if label == "__name__" else labels.get(label, "")
            if op == "=":
                ok = actual == value
            elif op == "!=":
                ok = actual != value
            else:
                ok = re.fullmatch(value, actual) is not None
                ok = ok if op == "=~" else not ok
            if not ok:
                return False
        return True

    def __str__(self) -> str:
        inner = ",".join(f"{label}{op}{_quote(value)}" for label, op, value in self.matchers)
        return f"{self.name or ''}{{{inner}}}" if inner or not self.name else self.name


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class Read:
    """One selector as an expression evaluates it: over *range* (zero for an instant
    vector; a matrix selector's range plus the ranges of the subqueries it sits in)
    ending *offset* before the evaluation time."""

    selector: Selector
    range: timedelta
    offset: timedelta
    at: bool  # an @ modifier pins it (or a subquery around it) to a fixed time

    @property
    def reaches_back(self) -> timedelta:
        return self.offset + self.range


def parse(expr: str) -> promql_parser.Expr:
    """The expression's syntax tree; ValueError with the parser's message if it is invalid."""
    return promql_parser.parse(expr)


def reads(expr: str | promql_parser.Expr) -> list[Read]:
    """Every selector of the expression, with the range and offset it is read over."""
    tree = parse(expr) if isinstance(expr, str) else expr
    return list(_walk(tree, timedelta(0), timedelta(0), at=False))


def metric_names(expr: str | promql_parser.Expr) -> set[str]:
    """The metric names (recorded series' included) the expression selects by name;
    a selector without one (``{__name__=~"..."}``) adds nothing."""
    return {read.selector.metric for read in reads(expr) if read.selector.metric is not None}


def _selector(node: promql_parser.VectorSelector) -> Selector:
    matchers = tuple(
        (matcher.name, _op(matcher.op), matcher.value) for matcher in node.matchers.matchers
    )
    return Selector(node.name, matchers)


def _walk(node: Any, range_: timedelta, offset: timedelta, *, at: bool) -> Iterator[Read]:
    """Selectors below *node*, inside subqueries totalling *range_* and *offset*."""
    if isinstance(node, promql_parser.VectorSelector):
        yield Read(
            _selector(node),
            range_,
            offset + (node.offset or timedelta(0)),
            at or node.at is not None,
        )
    elif isinstance(node, promql_parser.MatrixSelector):
        inner = node.vector_selector
        yield Read(
            _selector(inner),
            range_ + node.range,
            offset + (inner.offset or timedelta(0)),
            at or inner.at is not None,
        )
    elif isinstance(node, promql_parser.SubqueryExpr):
        yield from _walk(
            node.expr,
            range_ + (node.range or timedelta(0)),
            offset + (node.offset or timedelta(0)),
            at=at or node.at is not None,
        )
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from _walk(argument, range_, offset, at=at)
    elif isinstance(node, promql_parser.AggregateExpr):
        if node.param is not None:
            yield from _walk(node.param, range_, offset, at=at)
        yield from _walk(node.expr, range_, offset, at=at)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from _walk(node.lhs, range_, offset, at=at)
        yield from _walk(node.rhs, range_, offset, at=at)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        yield from _walk(node.expr, range_, offset, at=at)
    elif isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral):
        return
    else:
        raise PromQLWalkError(f"unknown PromQL node {type(node).__name__}: {node}")


# -- the lint -----------------------------------------------------------------------

# A range over raw series reads every sample of every series it selects: at a 15 s
# scrape interval an hour is 240 samples a series, a day 5,760, 30 days 172,800.
MAX_RAW_RANGE = timedelta(hours=1)
# Recorded series are few (per manager and window, per team), so a longer range
# over them is affordable; but not a month of them either.
MAX_RECORDED_RANGE = timedelta(days=8)


def range_violations(expr: str) -> list[str]:
    """Why the ranges this expression reads are too long, one line each (empty if fine)."""
    problems = []
    for read in reads(expr):
        if read.range == timedelta(0):
            continue
        limit = MAX_RECORDED_RANGE if read.selector.recorded else MAX_RAW_RANGE
        if not read.selector.exported and not read.selector.recorded:
            limit = MAX_RECORDED_RANGE  # Prometheus' own series (up, ALERTS): few
        if read.range > limit:
            kind = "recorded series" if read.selector.recorded else "raw series"
            problems.append(
                f"{read.selector} read over {_duration(read.range)} "
                f"(at most {_duration(limit)} over a {kind})"
            )
    return problems


def raw_offset_selectors(rules: Sequence[Rule]) -> set[Selector]:
    """Every selector of raw exported series that some rule reads through an offset
    (allowed: an instant selector with an offset reads one sample a series)."""
    return {
        read.selector
        for rule in rules
        for read in reads(rule.expr)
        if read.selector.exported and read.offset != timedelta(0)
    }


def raw_range_selectors(rules: Sequence[Rule]) -> set[Selector]:
    """Every selector of raw exported series that some rule reads over a range."""
    return {
        read.selector
        for rule in rules
        for read in reads(rule.expr)
        if read.selector.exported and read.range != timedelta(0)
    }


def history_reads(rules: Sequence[Rule]) -> list[Read]:
    """The reads of raw exported series that look into the past: through a range or an
    offset (the series they select need history, not just the latest scrape)."""
    wanted = raw_offset_selectors(rules) | raw_range_selectors(rules)
    found = {
        read
        for rule in rules
        for read in reads(rule.expr)
        if read.selector in wanted and (read.range or read.offset)
    }
    return sorted(found, key=lambda read: (str(read.selector), read.offset, read.range))


def recorded_history_reads(rules: Sequence[Rule]) -> list[Read]:
    """The raw inputs of the recorded series that some rule reads through a range or
    an offset, as reads over the deepest such look back (recorded series read at
    "now minus 7 days" are only as good as the raw series they were recorded
    from then: in production those have that history, so the test gives it).
    Followed through recorded series that record others, to the raw ones."""
    recorded = {rule.name: rule for rule in rules if rule.kind == "record"}
    looks: dict[str, timedelta] = {}
    for rule in rules:
        for read in reads(rule.expr):
            name = read.selector.metric
            if name in recorded and (read.range or read.offset):
                looks[name] = max(looks.get(name, timedelta(0)), read.reaches_back)
    found: dict[Selector, timedelta] = {}
    pending = list(looks.items())
    seen: set[str] = set()
    while pending:
        name, back = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for rule in (r for r in rules if r.kind == "record" and r.name == name):
            for read in reads(rule.expr):
                inner = read.selector.metric
                if read.selector.exported:
                    found[read.selector] = max(found.get(read.selector, timedelta(0)), back)
                elif inner in recorded:
                    pending.append((inner, back))
    return sorted(
        (Read(selector, back, timedelta(0), at=False) for selector, back in found.items()),
        key=lambda read: str(read.selector),
    )


def _duration(delta: timedelta) -> str:
    return str(promql_parser.display_duration(delta))
