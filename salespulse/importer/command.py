"""``salespulse import FILE``: backfill history from a CRM export (CSV).

::

    salespulse import sales_pipeline.csv --broker kafka://localhost:9092
    salespulse import export.csv --mapping my-crm.toml --dry-run
    salespulse import --print-managers sales_teams.csv >> company.toml

The file is read with a column mapping (``--mapping PATH``, or
``--builtin NAME``, which is chosen by itself when the file's header is
that of a built-in export), converted to contract events, sorted by event
time and published keyed by ``manager_id``. Rows that cannot become events
are written to a rejects file (the row as it was plus ``reason`` and
``detail``; default ``FILE.rejects.csv``) and counted by reason in the
closing report on stdout. ``--dry-run`` converts and reports without
publishing, and writes nothing: no rejects file unless one is named with
``--rejects PATH`` (trying a mapping must not leave files beside the data).

Open deals without any date (the sample's 500 Prospecting deals) are
rejected as ``no_date`` unless ``--undated-at DATE`` says when to create
them; the report counts how many were created that way.

The worker must know the mapping's pipeline: given a configuration
(``--config`` or ``SALESPULSE_CONFIG``), the import checks the pipeline and
its stages there before publishing anything.

``--print-managers ROSTER.csv`` prints the ``[managers]`` table for the
company configuration from a team roster (name column and team column from
the mapping's ``[teams]``, ``--team-column`` to choose another), with the
same manager ids the import derives from names.

Exit codes: 0 done (rejected rows are reported, not failures), 1 publishing
failed part way (importing again is safe), 2 the file, mapping or
configuration cannot be used.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from salespulse.importer.convert import Conversion, convert_rows, read_rows, write_rejects
from salespulse.importer.mapping import (
    BUILTIN_COMPANY_CONFIGS,
    BUILTIN_MAPPINGS,
    Mapping,
    detect_builtin,
    load_builtin,
    load_mapping,
)
from salespulse.settings import ConfigurationError, Manager, Settings, load_settings

PROG = "salespulse import"


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``salespulse import``; ``--config``/``--broker`` unless already there."""
    parser.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="the CRM export (CSV with a header row); with --print-managers: the team roster",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--mapping", type=Path, help="column mapping (TOML) for the export")
    source.add_argument(
        "--builtin",
        choices=sorted(BUILTIN_MAPPINGS),
        help="a built-in mapping (default: the one whose header the file has)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="convert and report, publish nothing"
    )
    parser.add_argument(
        "--undated-at",
        type=date.fromisoformat,
        metavar="DATE",
        help="create open deals that have no date on this day (YYYY-MM-DD) instead of "
        "rejecting them (the sample's Prospecting deals have none)",
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        help="CSV of the rejected rows (default: FILE.rejects.csv; none on a dry run unless given)",
    )
    parser.add_argument(
        "--print-managers",
        action="store_true",
        help="print the [managers] TOML table for the company configuration from the team "
        "roster FILE (e.g. sales_teams.csv) and exit",
    )
    parser.add_argument(
        "--team-column",
        help="with --print-managers: the roster column that names the team "
        "(default: the mapping's, regional_office for the sample; or e.g. manager)",
    )
    existing = parser._option_string_actions
    if "--config" not in existing:
        parser.add_argument("--config", help="TOML configuration file (env SALESPULSE_CONFIG)")
    if "--broker" not in existing:
        parser.add_argument("--broker", help="kafka://host:port (env SALESPULSE_BROKER)")


def import_command(args: argparse.Namespace) -> int:
    """Run ``salespulse import`` for parsed *args*; returns the exit code."""
    try:
        if args.print_managers:
            return print_managers(args, sys.stdout)
        return _import(args)
    except ConfigurationError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


@dataclass(frozen=True)
class ChosenMapping:
    mapping: Mapping
    described: str  # for the report: where the mapping came from


def choose_mapping(args: argparse.Namespace, header: list[str]) -> ChosenMapping:
    if args.mapping is not None:
        return ChosenMapping(load_mapping(args.mapping), f"file {args.mapping}")
    name = args.builtin or detect_builtin(header)
    if name is None:
        known = ", ".join(sorted(BUILTIN_MAPPINGS))
        raise ConfigurationError(
            f"{args.file}: the header {header} is not that of a built-in export ({known}); "
            "describe its columns in a mapping file and pass --mapping PATH"
        )
    return ChosenMapping(load_builtin(name), f"built-in {name}")


def check_pipeline(mapping: Mapping, settings: Settings) -> str | None:
    """Whether the worker's configuration accepts the mapping's events.

    Raises ConfigurationError when the configuration file lacks the pipeline,
    a stage, or disagrees on which stages win or lose; returns a warning when
    there is no configuration file to check against.
    """
    wanted = mapping.pipeline
    if settings.config is None:
        hint = ""
        for name, path in BUILTIN_COMPANY_CONFIGS.items():
            if load_builtin(name).source == mapping.source:
                hint = f"; {path} is a configuration that has it"
        return (
            f"no configuration given (--config or SALESPULSE_CONFIG), so whether the worker "
            f"knows pipeline {wanted.name!r} is not checked; without it, every event is "
            f"dead-lettered as unknown_pipeline{hint}"
        )
    configured = settings.pipelines.get(wanted.name)
    if configured is None:
        known = ", ".join(sorted(settings.pipelines))
        raise ConfigurationError(
            f"configuration {settings.config} has no pipeline {wanted.name!r} (it has: {known}); "
            "the worker would dead-letter every imported event as unknown_pipeline"
        )
    problems = []
    for stage in sorted({wanted.first_stage, *mapping.stages.values()}):
        if stage not in configured.stages and stage not in configured.lost:
            problems.append(f"stage {stage!r} is not in it")
        elif configured.outcome_of(stage) != wanted.outcome_of(stage):
            problems.append(
                f"stage {stage!r} means {configured.outcome_of(stage) or 'open'} there, "
                f"{wanted.outcome_of(stage) or 'open'} in the mapping"
            )
    if problems:
        raise ConfigurationError(
            f"pipeline {wanted.name!r} of configuration {settings.config} does not fit the "
            f"mapping: {'; '.join(problems)}"
        )
    return None


def _import(args: argparse.Namespace) -> int:
    started = time.monotonic()
    path: Path = args.file
    settings = load_settings(config=args.config, broker=args.broker)
    if not args.dry_run and settings.broker is None:
        raise ConfigurationError(
            "import needs a broker (--broker or SALESPULSE_BROKER, kafka://host:port); "
            "--dry-run converts without one"
        )
    header, rows = read_rows(path)
    chosen = choose_mapping(args, header)
    mapping = chosen.mapping
    missing = mapping.missing_columns(header)
    if missing:
        raise ConfigurationError(
            f"{path} lacks the columns {missing} that the mapping reads (its header: {header})"
        )
    warning = check_pipeline(mapping, settings)
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)

    conversion = convert_rows(mapping, header, rows, undated_at=args.undated_at)
    rejects_path: Path | None = args.rejects
    if rejects_path is None and not args.dry_run:
        rejects_path = path.with_name(f"{path.name}.rejects.csv")
    if rejects_path is not None:
        try:
            write_rejects(rejects_path, conversion)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the rejects file {rejects_path} ({exc.strerror or exc}); "
                "choose another place with --rejects PATH"
            ) from None

    published = 0
    failure: Exception | None = None
    if not args.dry_run:
        # Imported here: the Kafka client is not needed to build the CLI's parser.
        from salespulse.importer.publish import Progress, PublishError, publish

        progress = Progress(len(conversion.events), sys.stderr)
        try:
            published = asyncio.run(publish(settings, conversion.events, progress))
        except PublishError as exc:
            failure, published = exc, exc.published
    report = Report(
        file=path,
        mapping=f"{chosen.described} (pipeline {mapping.pipeline.name})",
        conversion=conversion,
        rejects_path=rejects_path,
        dry_run=args.dry_run,
        published=published,
        elapsed=time.monotonic() - started,
    )
    report.write(sys.stdout)
    if failure is not None:
        print(f"{PROG}: {failure}", file=sys.stderr)
        return 1
    return 0


@dataclass(frozen=True)
class Report:
    """The closing report: rows read, events by type, rejects by reason, time and rate."""

    file: Path
    mapping: str
    conversion: Conversion
    rejects_path: Path | None  # None: not written (a dry run without --rejects)
    dry_run: bool
    published: int
    elapsed: float

    def lines(self) -> list[str]:
        conversion = self.conversion
        converted = len(conversion.events)
        rows: list[tuple[str, int, str]] = [("rows read", conversion.rows_read, "")]
        if self.dry_run:
            rows.append(("events converted", converted, "dry run: nothing published"))
        elif self.published == converted:
            rows.append(("events published", self.published, ""))
        else:
            rows.append(("events converted", converted, ""))
        for kind, count in sorted(conversion.events_by_type().items()):
            note = ""
            if kind == "deal.stage_changed" and conversion.closed:
                closed = sorted(conversion.closed.items(), key=_won_first)
                note = ", ".join(f"{outcome} {n:,}" for outcome, n in closed)
            rows.append((f"  {kind}", count, note))
        if conversion.undated_at is not None:
            day = conversion.undated_at.date().isoformat()
            rows.append(("open deals undated", conversion.undated, f"created on {day}"))
        if not self.dry_run and self.published != converted:
            rows.append(("events published", self.published, "INCOMPLETE"))
        rejected = len(conversion.rejects)
        where = f"-> {self.rejects_path}" if self.rejects_path else "dry run: no rejects file"
        rows.append(("rows rejected", rejected, where))
        for reason, count in sorted(conversion.rejects_by_reason().items(), key=_most):
            hint = "open ones: --undated-at DATE" if reason == "no_date" else ""
            rows.append((f"  {reason}", count, hint if conversion.undated_at is None else ""))
        width = max(len(label) for label, _, _ in rows) + 2
        digits = max(len(f"{value:,}") for _, value, _ in rows)
        out = [f"{PROG}: {self.file}", f"  {'mapping'.ljust(width)}{self.mapping}"]
        for label, value, note in rows:
            text = f"  {label.ljust(width)}{value:>{digits},}"
            out.append(f"{text}   ({note})" if note else text)
        elapsed = max(self.elapsed, 1e-9)
        moved = converted if self.dry_run else self.published
        out.append(
            f"  {'elapsed'.ljust(width)}{self.elapsed:.1f} s   "
            f"({conversion.rows_read / elapsed:,.0f} rows/s, {moved / elapsed:,.0f} events/s)"
        )
        return out

    def write(self, stream: TextIO) -> None:
        stream.write("\n".join(self.lines()) + "\n")
        stream.flush()


def _won_first(item: tuple[str, int]) -> tuple[int, str]:
    return (0 if item[0] == "won" else 1, item[0])


def _most(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


# -- --print-managers ----------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def print_managers(args: argparse.Namespace, stream: TextIO) -> int:
    """Print ``[managers.<id>]`` tables (name, team) from a team roster CSV."""
    if args.mapping is not None:
        mapping = load_mapping(args.mapping)
    else:
        mapping = load_builtin(args.builtin or "crm-sales-opportunities")
    stream.write(managers_toml(mapping, args.file, args.team_column))
    stream.flush()
    return 0


def managers_toml(mapping: Mapping, roster: Path, team_column: str | None = None) -> str:
    name_column = mapping.teams.name_column
    team_column = team_column or mapping.teams.team_column
    try:
        with roster.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = list(reader)
    except FileNotFoundError:
        raise ConfigurationError(f"roster file {roster} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigurationError(f"roster file {roster} cannot be read: {exc}") from None
    missing = [column for column in (name_column, team_column) if column not in header]
    if missing:
        raise ConfigurationError(
            f"roster file {roster} lacks the columns {missing} (its header: {header}); "
            "see --team-column and the mapping's [teams]"
        )
    managers: dict[str, Manager] = {}
    names: dict[str, str] = {}
    problems: Counter[str] = Counter()
    for row in rows:
        name = (row.get(name_column) or "").strip()
        manager_id = mapping.manager_ids.id_of(name)
        if not manager_id:
            problems["no name"] += 1
            continue
        if manager_id in names and names[manager_id] != name:
            raise ConfigurationError(
                f"roster file {roster}: {names[manager_id]!r} and {name!r} both become "
                f"manager id {manager_id!r}"
            )
        try:
            managers[manager_id] = Manager(name=name, team=(row.get(team_column) or "").strip())
        except ValidationError as exc:
            raise ConfigurationError(f"roster file {roster}, {name!r}: {exc}") from None
        names[manager_id] = name
    if problems:
        print(
            f"{PROG}: skipped {problems['no name']} roster rows without a {name_column}",
            file=sys.stderr,
        )
    out = [
        f"# [managers] for salespulse from {roster.name}: name = {name_column}, "
        f"team = {team_column}; ids as `salespulse import` derives them",
    ]
    for manager_id in sorted(managers):
        manager = managers[manager_id]
        key = manager_id if _BARE_KEY.match(manager_id) else json.dumps(manager_id)
        out += ["", f"[managers.{key}]", f"name = {json.dumps(manager.name, ensure_ascii=False)}"]
        out.append(f"team = {json.dumps(manager.team, ensure_ascii=False)}")
    return "\n".join(out) + "\n"
