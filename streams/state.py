"""The records that make up salespulse's state, and their changelog encoding.

All state lives in one changelog-backed table whose keys say what a record
is and which partition it belongs to:

- ``m|<partition>|<manager>``: a manager's core: counters, open calendar
  periods, histograms, current-state gauges (open deals and tasks), and the
  offset of the last source message applied per topic;
- ``d|<partition>|<manager>|<deal>``, ``t|…|<task>``: one deal or task,
  with the ids of its events (the dedupe memory of deal and task events);
- ``c|<partition>|<manager>|<day>``: the ids of a manager's calls of one
  local day (the dedupe memory of calls);
- ``r|<partition>|<topic>``: messages of one source partition that were
  rejected before a manager could be known;
- ``p|<partition>``: how far each source topic's partition has been applied
  (see SourceProgress), written last in every changelog write.

A manager's core and its items are separate records, so a write carries
only what changed. They still change together: a core record embeds every
item that changed in the same write, and each record carries the sequence
number of its write. Items are sent only after the cores that embed them
are acknowledged, so whatever a crash cuts off, the newest core holds the
items as they were when it was written, and restoring takes, per item, the
newer of its own record and the copy in its manager's core. Each core
carries the source offsets it has absorbed, so a message delivered again
after a crash is skipped: updates are idempotent by construction, whatever
Faust did or did not commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.cells import CellKey, Cells, Reader, Writer, spelled_cells
from streams.items import Alarms, Items
from streams.schedule import Schedule

SEP = "\x1f"
_SEP = SEP.encode()


FORMAT = 2  # version 1 kept deals, tasks and event ids inside one manager record


@dataclass(slots=True)
class RegulationCheck:
    """A stage regulation waiting, on its deal, for a task that meets it or its deadline.

    Both outcomes are counted at the deadline: counting a check met as soon as
    its task comes, while the ones that will be missed wait for the deadline,
    would show compliance too high until then. Once met, the check leaves its
    deal for the manager's schedule (ManagerState.owed); ``met`` is true
    only in records written before that schedule existed.
    """

    stage: str
    task_type: str
    deadline: float  # epoch seconds
    entered_at: float
    met: bool = False


@dataclass(slots=True)
class DealState:
    """What salespulse remembers of one deal until it is closed and expired."""

    pipeline: str
    product: str = ""
    channel: str = ""
    segment: str = ""
    amount: float | None = None
    created: bool = False
    outcome: str | None = None
    closed_day: int | None = None
    created_at: float | None = None
    stage: str | None = None  # the current stage
    stage_entered_at: float | None = None
    reached: int = -1  # highest index of the ordered funnel reached
    checks: list[RegulationCheck] = field(default_factory=list)
    # Stage changes seen before the deal's creation: (stage, amount, at), applied
    # when the creation arrives, or as they are once the creation wait is over.
    pending: list[tuple[str, float | None, float]] = field(default_factory=list)
    settled: bool = False  # no creation is waited for any more
    ids: list[str] = field(default_factory=list)  # event ids applied to this deal

    def to_list(self) -> list[Any]:
        return [
            self.pipeline,
            self.product,
            self.channel,
            self.segment,
            self.amount,
            self.created,
            self.outcome,
            self.closed_day,
            self.created_at,
            self.stage,
            self.stage_entered_at,
            self.reached,
            self.settled,
            [list(entry) for entry in self.pending],
            [[c.stage, c.task_type, c.deadline, c.entered_at, c.met] for c in self.checks],
            self.ids,
        ]

    @classmethod
    def from_list(cls, items: list[Any]) -> DealState:
        deal = cls(*items[:12])
        deal.settled = items[12]
        deal.pending = [(stage, amount, at) for stage, amount, at in items[13]]
        deal.checks = [RegulationCheck(*check) for check in items[14]]
        if len(items) > 15:
            deal.ids = items[15]
        return deal

    def alarms(self) -> Alarms:
        """What the deal waits for: its regulations' deadline (tasks clock), and the end of
        the wait for its creation (deals clock), counted from its first early change."""
        found: Alarms = ()
        if self.checks:
            found += ((CHECK_DEADLINE, min(check.deadline for check in self.checks)),)
        if self.pending:
            found += ((CREATION_WAIT, min(at for _, _, at in self.pending)),)
        return found

    def open_cells(self) -> tuple[CellKey, ...]:
        """The current-state gauge cells this deal counts in."""
        if self.outcome is None and self.stage is not None:
            return (("open_deals", self.pipeline, self.stage),)
        return ()


@dataclass(slots=True)
class TaskState:
    """A task from creation until it is completed and expired.

    A completion that arrives before its creation is held here (created
    False, completed_at set) until the creation tells the task's type and
    deadline, so out-of-order delivery gives the same numbers as in-order.
    """

    task_type: str = ""
    due_at: float | None = None
    created: bool = False
    deal_id: str | None = None
    completed_at: float | None = None
    completion_counted: bool = False
    overdue: bool = False
    closed_day: int | None = None
    ids: list[str] = field(default_factory=list)  # event ids applied to this task
    # Counted among the tasks whose deadline has passed (the overdue rate's denominator),
    # or, done before it, handed to ManagerState.owed to be counted when it passes.
    deadline_counted: bool = False

    def to_list(self) -> list[Any]:
        return [
            self.task_type,
            self.due_at,
            self.created,
            self.deal_id,
            self.completed_at,
            self.completion_counted,
            self.overdue,
            self.closed_day,
            self.ids,
            self.deadline_counted,
        ]

    @classmethod
    def from_list(cls, items: list[Any]) -> TaskState:
        return cls(*items)

    @property
    def is_open(self) -> bool:
        return self.created and self.completed_at is None

    def alarms(self) -> Alarms:
        """What the task waits for: its due time while open (then it is overdue, after
        the allowance); completed before its creation came, the end of that wait; and,
        restored from a record written before deadlines were scheduled in the manager's
        core (ManagerState.owed), its deadline, to be counted as passed."""
        found: Alarms = ()
        if self.created and self.due_at is not None and not self.deadline_counted:
            found += ((TASK_DEADLINE, self.due_at),)
        if self.is_open and not self.overdue and self.due_at is not None:
            found += ((TASK_DUE, self.due_at),)
        if not self.created and self.completed_at is not None and not self.completion_counted:
            found += ((COMPLETION_WAIT, self.completed_at),)
        return found

    def open_cells(self) -> tuple[CellKey, ...]:
        if not self.is_open:
            return ()
        if self.overdue:
            return OPEN_TASK, OPEN_OVERDUE_TASK
        return (OPEN_TASK,)


# Kinds of Item.alarms: what an item waits for, each passed by the clock named.
TASK_DEADLINE = b"l"  # tasks clock: an unscheduled deadline passed, the task done or not
TASK_DUE = b"o"  # tasks clock, plus the overdue allowance
COMPLETION_WAIT = b"w"  # tasks clock, plus the creation wait
CHECK_DEADLINE = b"c"  # tasks clock
CREATION_WAIT = b"p"  # deals clock, plus the creation wait

OPEN_TASK: CellKey = ("open_tasks",)
OPEN_OVERDUE_TASK: CellKey = ("open_tasks_overdue",)


@dataclass(slots=True)
class CallIds:
    """Event ids of one manager's calls on one local day (forgotten like a deal closed
    that day)."""

    day: int
    ids: set[str] = field(default_factory=set)

    @property
    def closed_day(self) -> int:
        return self.day

    def alarms(self) -> Alarms:
        return ()

    def to_list(self) -> list[Any]:
        return [self.day, sorted(self.ids)]

    @classmethod
    def from_list(cls, items: list[Any]) -> CallIds:
        return cls(items[0], set(items[1]))


@dataclass(slots=True)
class OpenPeriod:
    """A calendar period that can still change: its end and its gauge cells."""

    end: float  # epoch seconds, exclusive
    cells: Cells = field(default_factory=Cells)


def _deal_items() -> Items[DealState]:
    return Items(b"d", DealState.from_list)


def _task_items() -> Items[TaskState]:
    return Items(b"t", TaskState.from_list)


def _call_items() -> Items[CallIds]:
    return Items(b"c", CallIds.from_list)


@dataclass(slots=True)
class ManagerState:
    manager_id: str
    partition: int
    offsets: dict[str, int] = field(default_factory=dict)
    watermark: float = float("-inf")  # newest event time applied, epoch seconds
    # Newest event time per topic family (deals, tasks, calls). Topics are consumed
    # independently and may be minutes or days apart after a catch-up, so lateness
    # and deadlines are judged per stream, never by another topic's progress.
    stream_watermarks: dict[str, float] = field(default_factory=dict)
    counters: Cells = field(default_factory=Cells)
    periods: dict[str, OpenPeriod] = field(default_factory=dict)
    # (histogram, *labels) -> [count per bucket..., sum, count]
    histograms: dict[CellKey, list[float]] = field(default_factory=dict)
    # Current state, kept as items change: open deals per stage, open (overdue) tasks.
    gauges: Cells = field(default_factory=Cells)
    # Never after the earliest task or regulation deadline (tasks clock), or the earliest
    # end of a creation wait (deals clock): passing one looks at the items' alarms.
    next_check: float = float("inf")
    next_deal_check: float = float("inf")
    # Counts owed when the tasks clock passes a time: task deadlines, regulations met early.
    owed: Schedule = field(default_factory=Schedule)
    labels: dict[str, list[str]] = field(default_factory=dict)  # admitted free-text values
    deals: Items[DealState] = field(default_factory=_deal_items)
    tasks: Items[TaskState] = field(default_factory=_task_items)
    calls: Items[CallIds] = field(default_factory=_call_items)  # keyed by local day ordinal

    def add(self, cell: CellKey, amount: float = 1.0) -> None:
        self.counters.add(cell, amount)

    def shift(self, before: tuple[CellKey, ...], after: tuple[CellKey, ...]) -> None:
        """Move an item's contribution to the current-state gauges."""
        if before == after:
            return
        gauges = self.gauges
        for cell in before:
            if gauges.get(cell, 0.0) > 1.0:
                gauges.add(cell, -1.0)
            else:
                gauges.pop(cell, None)
        for cell in after:
            gauges.add(cell)

    def item_maps(self) -> tuple[Items[DealState], Items[TaskState], Items[CallIds]]:
        return self.deals, self.tasks, self.calls

    def items_of(self, kind: bytes) -> Items[Any]:
        """The items of a record kind: b"d" deals, b"t" tasks, b"c" call days."""
        if kind == b"d":
            return self.deals
        if kind == b"t":
            return self.tasks
        if kind == b"c":
            return self.calls
        raise ValueError(f"no items of kind {kind!r}")


@dataclass(slots=True)
class RejectedState:
    topic: str
    partition: int
    offset: int = -1
    counters: Cells = field(default_factory=Cells)


@dataclass(slots=True)
class SourceProgress:
    """The last offset of each source topic whose outcome the state holds, for one partition.

    Written after every other record of a changelog write has been acknowledged,
    so a restored progress never claims more than the restored records hold. It
    is what lets the worker notice a source message the consumer never handed
    over (an offset committed but never processed) and read it back itself.
    """

    partition: int
    offsets: dict[str, int] = field(default_factory=dict)


Record = ManagerState | RejectedState | SourceProgress


# -- keys --------------------------------------------------------------------------


def manager_key(partition: int, manager_id: str) -> bytes:
    return f"m{SEP}{partition}{SEP}{manager_id}".encode()


def item_key(kind: bytes, partition: int, manager_id: str, item: str | int) -> bytes:
    return kind + f"{SEP}{partition}{SEP}{manager_id}{SEP}{item}".encode()


def rejected_key(partition: int, topic: str) -> bytes:
    return f"r{SEP}{partition}{SEP}{topic}".encode()


def progress_key(partition: int) -> bytes:
    return f"p{SEP}{partition}".encode()


def is_progress_key(key: bytes) -> bool:
    return key[:1] == b"p"


def marker_key(partition: int) -> bytes:
    """Key of the end-of-write marker (a tombstone, so it never stays in the table)."""
    return f"x{SEP}{partition}".encode()


def partition_of_key(key: bytes) -> int:
    return int(key.split(_SEP, 2)[1])


def split_key(key: bytes) -> list[str]:
    return key.decode().split(SEP)


# -- encoding ----------------------------------------------------------------------


def encode_core(
    state: ManagerState, seq: int, embedded: dict[bytes, dict[str, bytes | None]]
) -> bytes:
    """A manager's core record with the items of this write embedded (None: deleted)."""
    cells = Writer()
    body: dict[str, Any] = {
        "k": "m",
        "v": FORMAT,
        "q": seq,
        "id": state.manager_id,
        "p": state.partition,
        "o": state.offsets,
        "w": state.watermark if state.watermark != float("-inf") else None,
        "W": state.stream_watermarks,
        "c": cells.rows(state.counters),
        "P": {key: [p.end, cells.rows(p.cells)] for key, p in state.periods.items()},
        "h": cells.rows(state.histograms),
        "g": cells.rows(state.gauges),
        "n": state.next_check if state.next_check != float("inf") else None,
        "N": state.next_deal_check if state.next_deal_check != float("inf") else None,
        "D": cells.pairs((counter, at) for at, counter in state.owed),
        "l": state.labels,
        "e": {
            kind.decode(): {
                str(name): orjson.Fragment(raw) if raw is not None else None
                for name, raw in items.items()
            }
            for kind, items in embedded.items()
            if items
        },
    }
    body["S"] = cells.strings()
    return orjson.dumps(body)


@dataclass(slots=True)
class CoreRecord:
    """A decoded core record: the manager's state (items not yet attached) and what it
    embedded: kind -> item -> item body as a list, or None for a deleted item."""

    state: ManagerState
    seq: int
    embedded: dict[bytes, dict[str, list[Any] | None]]


def _manager_of(
    body: dict[str, Any],
    *,
    counters: Cells,
    periods: dict[str, OpenPeriod],
    histograms: dict[CellKey, list[float]],
    gauges: Cells,
) -> ManagerState:
    """A manager's state from the fields every format of its core record spells alike."""
    return ManagerState(
        manager_id=body["id"],
        partition=body["p"],
        offsets=body["o"],
        watermark=body["w"] if body["w"] is not None else float("-inf"),
        stream_watermarks=body["W"],
        counters=counters,
        periods=periods,
        histograms=histograms,
        gauges=gauges,
        next_check=body["n"] if body["n"] is not None else float("inf"),
        next_deal_check=body["N"] if body["N"] is not None else float("inf"),
        labels=body["l"],
    )


def decode_core(raw: bytes) -> CoreRecord:
    body = orjson.loads(raw)
    if body.get("v", 1) == 1:
        return _decode_core_v1(body)
    cells = Reader(body["S"])
    state = _manager_of(
        body,
        counters=cells.cells(body["c"]),
        periods={key: OpenPeriod(end, cells.cells(rows)) for key, (end, rows) in body["P"].items()},
        histograms=cells.series(body["h"]),
        gauges=cells.cells(body["g"]),
    )
    # Absent from records written before deadlines were scheduled in the core.
    state.owed = Schedule((at, counter) for counter, at in cells.pairs(body.get("D", [])))
    embedded = {kind.encode(): items for kind, items in body["e"].items()}
    return CoreRecord(state, body["q"], embedded)


def _decode_core_v1(body: dict[str, Any]) -> CoreRecord:
    """A manager record of format 1 (deals and tasks inside): its items become embedded
    ones of sequence 0, so any record written since wins over them."""
    state = _manager_of(
        body,
        counters=spelled_cells(body["c"]),
        periods={
            key: OpenPeriod(end, spelled_cells(rows)) for key, (end, rows) in body["P"].items()
        },
        histograms={tuple(row[:-1]): row[-1] for row in body["h"]},
        gauges=Cells(),  # format 1 had none: rebuilt from the deals and tasks below
    )
    deals = {deal_id: DealState.from_list(items) for deal_id, items in body["d"].items()}
    tasks = {task_id: TaskState.from_list(items) for task_id, items in body["t"].items()}
    for deal in deals.values():
        state.shift((), deal.open_cells())
    for task in tasks.values():
        state.shift((), task.open_cells())
    embedded: dict[bytes, dict[str, list[Any] | None]] = {
        b"d": {deal_id: deal.to_list() for deal_id, deal in deals.items()},
        b"t": {task_id: task.to_list() for task_id, task in tasks.items()},
    }
    return CoreRecord(state, 0, embedded)


def encode(record: RejectedState | SourceProgress) -> bytes:
    """Changelog bytes of a partition-level record."""
    body: dict[str, Any]
    if isinstance(record, SourceProgress):
        body = {"k": "p", "p": record.partition, "o": record.offsets}
    else:
        cells = Writer()
        body = {
            "k": "r",
            "t": record.topic,
            "p": record.partition,
            "o": record.offset,
            "c": cells.rows(record.counters),
        }
        body["S"] = cells.strings()
    body["v"] = FORMAT
    return orjson.dumps(body)


def decode(raw: bytes) -> RejectedState | SourceProgress:
    body = orjson.loads(raw)
    kind = body["k"]
    if kind == "p":
        return SourceProgress(partition=body["p"], offsets=body["o"])
    if kind == "r":
        rows = body["c"]
        counters = Reader(body["S"]).cells(rows) if "S" in body else spelled_cells(rows)
        return RejectedState(
            topic=body["t"], partition=body["p"], offset=body["o"], counters=counters
        )
    raise ValueError(f"unknown state record kind {kind!r}")
