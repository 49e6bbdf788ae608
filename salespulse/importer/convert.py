"""Rows of a CRM export -> contract events, or one rejection reason per row.

Per row (see :class:`~salespulse.importer.mapping.Mapping`):

- ``deal.created`` at the created date (or, when the export has none, the
  engaged date), in the pipeline's created stage (default: the first stage),
  with product, channel and segment as the mapping normalises them; an open
  row whose stage lies before the created stage is created in its own stage;
- an open row with neither date is created at ``undated_at`` when the import
  is given one (``--undated-at DATE``): the sample's Prospecting deals carry
  no date at all, and rejecting them would drop the whole open top of the
  funnel; a closed row without dates is still rejected, its period unknown;
- an open row whose stage lies further down the funnel than the created stage
  adds a ``deal.stage_changed`` to it at the same moment (the export says
  where the deal is, not when it got there);
- a won or lost row adds a ``deal.stage_changed`` to its stage at the close
  date, with ``amount`` = the amount column.

Event ids are derived from the row, ``import:<source>:<record id>:<kind>``
(kinds ``created``, ``stage:<stage>``), never drawn at random: importing the
same file again produces the same ids, which the processor counts as
duplicates, so a repeated or resumed import changes no number.

A row becomes all of its events or none: any problem rejects the whole row
with a stable reason code, so no deal is ever half imported and no row is
silently dropped. Reasons:

``malformed_row``        more or fewer cells than the header
``no_record_id``         the record id cell is empty
``duplicate_record``     the record id appeared on an earlier row
``no_manager``           the manager cell is empty
``unknown_stage``        the stage value is not in the mapping's ``[stages]``
``no_date``              neither a created nor an engaged date (and, for an open row,
                         no ``undated_at``)
``bad_date``             a date matches none of the mapping's formats
``no_close_date``        a won or lost row without a close date
``closed_before_opened`` the close date lies before the creation
``bad_amount``           the amount is not a non-negative number
``in_future``            an event more than a day ahead of now
``invalid_event``        the event breaks the contract (e.g. a manager id over 64 chars)
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from salespulse.importer.mapping import Mapping
from salespulse.settings import ConfigurationError
from schemas.events import EVENT_ADAPTER, TOPIC_OF_TYPE

MAX_EVENT_ID = 128
FUTURE_SKEW = timedelta(days=1)
# Events at the same instant go out created first, then stage moves, then closes.
_KIND_RANK = {"deal.created": 0, "deal.stage_changed": 1}


class RowRejectedError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int  # line of the row in the file (the header is line 1)
    row: dict[str, str]
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class OutEvent:
    """One validated event, ready to publish: JSON value, key and topic family."""

    type: str
    manager_id: str
    event_id: str
    occurred_at: datetime
    value: bytes
    family: str  # deals, tasks, calls: the topic name comes from the settings
    order: tuple[float, int, int]

    @property
    def key(self) -> bytes:
        return self.manager_id.encode("utf-8")


@dataclass
class Conversion:
    """Everything one export gives: events in publishing order, and the rejected rows."""

    header: list[str]
    rows_read: int = 0
    events: list[OutEvent] = field(default_factory=list)
    rejects: list[Rejection] = field(default_factory=list)
    closed: Counter[str] = field(default_factory=Counter)  # won/lost deals among the events
    undated_at: datetime | None = None  # when open deals without a date were created
    undated: int = 0  # open deals created at undated_at

    def events_by_type(self) -> Counter[str]:
        return Counter(event.type for event in self.events)

    def rejects_by_reason(self) -> Counter[str]:
        return Counter(reject.reason for reject in self.rejects)


def event_id(mapping: Mapping, record_id: str, kind: str) -> str:
    """``import:<source>:<record id>:<kind>``; a record id too long for that is hashed."""
    text = f"import:{mapping.source}:{record_id}:{kind}"
    if len(text) <= MAX_EVENT_ID:
        return text
    digest = hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:32]
    return f"import:{mapping.source}:sha256-{digest}:{kind}"


def convert_row(
    mapping: Mapping, row: dict[str, str], undated_at: datetime | None = None
) -> list[dict[str, Any]]:
    """The contract events of one row (JSON-ready dicts); raises RowRejectedError.

    *undated_at*: when an open row with neither a created nor an engaged date
    is created (None: such a row is rejected as ``no_date``)."""
    columns = mapping.columns
    if None in row or any(value is None for value in row.values()):
        raise RowRejectedError("malformed_row", "the row has more or fewer cells than the header")
    record_id = row[columns.record_id].strip()
    if not record_id:
        raise RowRejectedError("no_record_id", f"column {columns.record_id} is empty")
    manager_text = row[columns.manager].strip()
    manager_id = mapping.manager_ids.id_of(manager_text)
    if not manager_id:
        raise RowRejectedError("no_manager", f"column {columns.manager} is empty")
    crm_stage = row[columns.stage].strip()
    stage = mapping.stages.get(crm_stage)
    if stage is None:
        known = ", ".join(sorted(mapping.stages))
        raise RowRejectedError(
            "unknown_stage", f"{columns.stage} {crm_stage!r} is not mapped (mapped: {known})"
        )

    pipeline = mapping.pipeline
    outcome = pipeline.outcome_of(stage)
    created_at = _date(mapping, row, columns.created)
    if created_at is None:
        created_at = _date(mapping, row, columns.engaged)
    if created_at is None and outcome is None:
        created_at = undated_at
    if created_at is None:
        named = " or ".join(c for c in (columns.created, columns.engaged) if c)
        hint = " (an open deal would be created at --undated-at DATE)" if outcome is None else ""
        raise RowRejectedError("no_date", f"no {named}{hint}")
    closed_at = _date(mapping, row, columns.closed)
    amount = _amount(row, columns.amount)

    base: dict[str, Any] = {
        "manager_id": manager_id,
        "source": mapping.source,
        "deal_id": record_id,
        "pipeline": pipeline.name,
    }
    first = pipeline.first_stage
    here, start = pipeline.index_of(stage), pipeline.index_of(first)
    if outcome is None and here is not None and start is not None and here < start:
        first = stage  # not yet as far as the export's deals are first known: created there
    created: dict[str, Any] = {
        "event_id": event_id(mapping, record_id, "created"),
        "type": "deal.created",
        "occurred_at": created_at.isoformat(),
        **base,
        "stage": first,
    }
    if amount is not None and outcome is None:
        created["amount"] = amount  # an open deal's value; a closed one's goes with the close
    for label in ("product", "channel", "segment"):
        column = getattr(columns, label)
        if column and row[column].strip():
            created[label] = mapping.normalised(label, row[column])
    events = [created]

    if outcome is not None:
        if closed_at is None:
            raise RowRejectedError("no_close_date", f"a {crm_stage} deal without {columns.closed}")
        if closed_at < created_at:
            raise RowRejectedError(
                "closed_before_opened",
                f"{columns.closed} {closed_at.date()} is before the creation {created_at.date()}",
            )
        closing: dict[str, Any] = {
            "event_id": event_id(mapping, record_id, f"stage:{stage}"),
            "type": "deal.stage_changed",
            "occurred_at": closed_at.isoformat(),
            **base,
            "from_stage": first,
            "to_stage": stage,
        }
        if amount is not None:
            closing["amount"] = amount
        events.append(closing)
    else:
        if here is not None and start is not None and here > start:
            events.append(
                {
                    "event_id": event_id(mapping, record_id, f"stage:{stage}"),
                    "type": "deal.stage_changed",
                    "occurred_at": created_at.isoformat(),
                    **base,
                    "from_stage": first,
                    "to_stage": stage,
                }
            )
    return events


def _date(mapping: Mapping, row: dict[str, str], column: str | None) -> datetime | None:
    if not column or not row[column].strip():
        return None
    try:
        return mapping.dates.parse(row[column])
    except ValueError as exc:
        raise RowRejectedError("bad_date", f"{column}: {exc}") from None


def _amount(row: dict[str, str], column: str | None) -> float | None:
    if not column or not row[column].strip():
        return None
    text = row[column].strip().replace(" ", "").replace("_", "")
    try:
        value = float(text)
    except ValueError:
        raise RowRejectedError("bad_amount", f"{column} {row[column]!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise RowRejectedError(
            "bad_amount", f"{column} {row[column]!r} is not a non-negative amount"
        )
    return value


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def convert_rows(
    mapping: Mapping,
    header: Sequence[str],
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    now: datetime | None = None,
    undated_at: date | None = None,
) -> Conversion:
    """Convert (line, row) pairs; events come back sorted for publishing.

    *undated_at*: the day open rows without any date are created on (at the
    mapping's time of day in its zone); how many were is ``undated``.

    Events are sorted by event time (then created before stage moves, then
    by row), because the processor judges lateness and keeps its dedupe memory
    by each manager's own newest event per topic: an export listed by record
    id would send a deal closed in December before one engaged in January,
    making the January events "late" for that manager (counted in all-history
    totals but not in their calendar periods) and a close could arrive before
    its deal's creation. In time order, every manager's history arrives as it
    happened; the key (manager_id) keeps each manager's events in one
    partition, in that order.
    """
    limit = (now or datetime.now(UTC)) + FUTURE_SKEW
    result = Conversion(header=list(header))
    if undated_at is not None:
        dates = mapping.dates
        result.undated_at = datetime.combine(undated_at, dates.time_of_day, tzinfo=dates.zone)
    seen: set[str] = set()
    record_column = mapping.columns.record_id
    for line, row in rows:
        result.rows_read += 1
        try:
            record_id = (row.get(record_column) or "").strip()
            if record_id and record_id in seen:
                raise RowRejectedError(
                    "duplicate_record", f"{record_column} {record_id} seen before"
                )
            events = convert_row(mapping, row, result.undated_at)
            encoded = [_validated(event, limit) for event in events]
        except RowRejectedError as rejected:
            result.rejects.append(Rejection(line, row, rejected.reason, rejected.detail))
            continue
        seen.add(record_id)
        result.undated += _undated(mapping, row)  # converted without a date: at undated_at
        for event, value in zip(events, encoded, strict=True):
            occurred = datetime.fromisoformat(event["occurred_at"])
            result.events.append(
                OutEvent(
                    type=event["type"],
                    manager_id=event["manager_id"],
                    event_id=event["event_id"],
                    occurred_at=occurred,
                    value=value,
                    family=TOPIC_OF_TYPE[event["type"]],
                    order=(occurred.timestamp(), _rank(event, mapping), line),
                )
            )
            if event["type"] == "deal.stage_changed":
                outcome = mapping.pipeline.outcome_of(event["to_stage"])
                if outcome:
                    result.closed[outcome] += 1
    result.events.sort(key=lambda event: event.order)
    return result


def _undated(mapping: Mapping, row: dict[str, str]) -> int:
    """1 when the row has neither a created nor an engaged date, else 0."""
    columns = (mapping.columns.created, mapping.columns.engaged)
    return 0 if any(column and row[column].strip() for column in columns) else 1


def _rank(event: dict[str, Any], mapping: Mapping) -> int:
    rank = _KIND_RANK[event["type"]]
    if event["type"] == "deal.stage_changed" and mapping.pipeline.outcome_of(event["to_stage"]):
        rank += 1
    return rank


def _validated(event: dict[str, Any], limit: datetime) -> bytes:
    value = encode(event)
    try:
        model = EVENT_ADAPTER.validate_json(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"][1:]) or "event"
        raise RowRejectedError(
            "invalid_event", f"{event['type']} {where}: {error['msg']}"
        ) from None
    if model.occurred_at > limit:
        raise RowRejectedError("in_future", f"{event['type']} at {event['occurred_at']} is ahead")
    return value


def read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header and the (line, row) pairs of a CSV export; a BOM is ignored."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = []
            start = reader.line_num + 1
            for row in reader:
                rows.append((start, row))
                start = reader.line_num + 1
    except FileNotFoundError:
        raise ConfigurationError(f"export file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigurationError(f"export file {path} cannot be read as UTF-8 CSV: {exc}") from None
    if not header:
        raise ConfigurationError(f"export file {path} has no header row")
    return header, rows


def convert_file(mapping: Mapping, path: Path, *, now: datetime | None = None) -> Conversion:
    header, rows = read_rows(path)
    missing = mapping.missing_columns(header)
    if missing:
        raise ConfigurationError(
            f"export file {path} lacks the columns {missing} that mapping "
            f"{mapping.source!r} reads (its header: {header})"
        )
    return convert_rows(mapping, header, rows, now=now)


def write_rejects(path: Path, conversion: Conversion) -> None:
    """The rejected rows as they were, plus ``reason`` and ``detail`` columns."""
    header = conversion.header
    reason, detail = _free_name(header, "reason"), _free_name(header, "detail")
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, reason, detail])
        for reject in conversion.rejects:
            cells = [reject.row.get(column) or "" for column in header]
            writer.writerow([*cells, reject.reason, reject.detail])


def _free_name(header: Sequence[str], name: str) -> str:
    while name in header:
        name = f"import_{name}"
    return name
