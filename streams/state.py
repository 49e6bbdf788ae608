"""The records that make up salespulse's state, and their changelog encoding.

All state lives in one changelog-backed table whose keys say what a record
is and which partition it belongs to:

- ``m|<partition>|<manager>``: a manager's counters, open calendar periods,
  deals, and the offset of the last source message applied per topic;
- ``s|<partition>|<manager>|<day>``: event ids seen for that manager on one
  local day (dedupe memory, expired by event time);
- ``r|<partition>|<topic>``: messages of one source partition that were
  rejected before a manager could be known;
- ``p|<partition>``: how far each source topic's partition has been applied
  (see SourceProgress), written last in every changelog write.

Every record carries the source offsets it has absorbed, so a message that is
delivered again after a crash is recognised and skipped: updates are
idempotent by construction, whatever Faust did or did not commit. One record
per manager holds everything a manager's numbers depend on, so a manager's
state is always written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

SEP = "\x1f"

# A counter or gauge cell: the metric's short name followed by its label values.
CellKey = tuple[str, ...]


@dataclass(slots=True)
class RegulationCheck:
    """A stage regulation waiting to be met by a task, or missed at its deadline."""

    stage: str
    task_type: str
    deadline: float  # epoch seconds
    entered_at: float


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
            [[c.stage, c.task_type, c.deadline, c.entered_at] for c in self.checks],
        ]

    @classmethod
    def from_list(cls, items: list[Any]) -> DealState:
        deal = cls(*items[:-3])
        deal.settled = items[-3]
        deal.pending = [(stage, amount, at) for stage, amount, at in items[-2]]
        deal.checks = [RegulationCheck(*check) for check in items[-1]]
        return deal


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
        ]

    @classmethod
    def from_list(cls, items: list[Any]) -> TaskState:
        return cls(*items)

    @property
    def is_open(self) -> bool:
        return self.created and self.completed_at is None


@dataclass(slots=True)
class OpenPeriod:
    """A calendar period that can still change: its end and its gauge cells."""

    end: float  # epoch seconds, exclusive
    cells: dict[CellKey, float] = field(default_factory=dict)


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
    counters: dict[CellKey, float] = field(default_factory=dict)
    periods: dict[str, OpenPeriod] = field(default_factory=dict)
    deals: dict[str, DealState] = field(default_factory=dict)
    seen_days: list[int] = field(default_factory=list)  # live dedupe buckets
    tasks: dict[str, TaskState] = field(default_factory=dict)
    # (histogram, *labels) -> [count per bucket..., sum, count]
    histograms: dict[CellKey, list[float]] = field(default_factory=dict)
    next_check: float = float("inf")  # earliest task or regulation deadline (tasks clock)
    next_deal_check: float = float("inf")  # earliest end of a creation wait (deals clock)
    labels: dict[str, list[str]] = field(default_factory=dict)  # admitted free-text values

    def add(self, cell: CellKey, amount: float = 1.0) -> None:
        counters = self.counters
        counters[cell] = counters.get(cell, 0.0) + amount


@dataclass(slots=True)
class SeenIds:
    """Event ids of one manager and local day, each with the message it came in.

    The origin (offset and topic) tells a redelivery of the same message, which
    is not a duplicate, from a second message carrying the same id, which is.
    """

    ids: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class RejectedState:
    topic: str
    partition: int
    offset: int = -1
    counters: dict[CellKey, float] = field(default_factory=dict)


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


Record = ManagerState | SeenIds | RejectedState | SourceProgress
# Records metrics are made from; progress is bookkeeping only.
RECORD_KINDS = (b"m", b"s", b"r")


def manager_key(partition: int, manager_id: str) -> bytes:
    return f"m{SEP}{partition}{SEP}{manager_id}".encode()


def seen_key(partition: int, manager_id: str, day: int) -> bytes:
    return f"s{SEP}{partition}{SEP}{manager_id}{SEP}{day}".encode()


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
    return int(key.split(SEP.encode(), 2)[1])


def _cells_out(cells: dict[CellKey, float]) -> list[list[Any]]:
    return [[*cell, value] for cell, value in cells.items()]


def _cells_in(rows: list[list[Any]]) -> dict[CellKey, float]:
    return {tuple(row[:-1]): float(row[-1]) for row in rows}


def encode(record: Record) -> bytes:
    """Changelog bytes of a record; compact, versioned, order-independent."""
    body: dict[str, Any]
    if isinstance(record, ManagerState):
        body = {
            "k": "m",
            "id": record.manager_id,
            "p": record.partition,
            "o": record.offsets,
            "w": record.watermark if record.watermark != float("-inf") else None,
            "W": record.stream_watermarks,
            "c": _cells_out(record.counters),
            "P": {key: [p.end, _cells_out(p.cells)] for key, p in record.periods.items()},
            "d": {deal_id: deal.to_list() for deal_id, deal in record.deals.items()},
            "s": record.seen_days,
            "t": {task_id: task.to_list() for task_id, task in record.tasks.items()},
            "h": [[*key, values] for key, values in record.histograms.items()],
            "n": record.next_check if record.next_check != float("inf") else None,
            "N": record.next_deal_check if record.next_deal_check != float("inf") else None,
            "l": record.labels,
        }
    elif isinstance(record, SeenIds):
        body = {"k": "s", "i": record.ids}
    elif isinstance(record, SourceProgress):
        body = {"k": "p", "p": record.partition, "o": record.offsets}
    else:
        body = {
            "k": "r",
            "t": record.topic,
            "p": record.partition,
            "o": record.offset,
            "c": _cells_out(record.counters),
        }
    body["v"] = 1
    return orjson.dumps(body)


def decode(raw: bytes) -> Record:
    body = orjson.loads(raw)
    kind = body["k"]
    if kind == "m":
        return ManagerState(
            manager_id=body["id"],
            partition=body["p"],
            offsets=body["o"],
            watermark=body["w"] if body["w"] is not None else float("-inf"),
            stream_watermarks=body["W"],
            counters=_cells_in(body["c"]),
            periods={
                key: OpenPeriod(end, _cells_in(cells)) for key, (end, cells) in body["P"].items()
            },
            deals={deal_id: DealState.from_list(items) for deal_id, items in body["d"].items()},
            seen_days=body["s"],
            tasks={task_id: TaskState.from_list(items) for task_id, items in body["t"].items()},
            histograms={tuple(row[:-1]): row[-1] for row in body["h"]},
            next_check=body["n"] if body["n"] is not None else float("inf"),
            next_deal_check=body["N"] if body["N"] is not None else float("inf"),
            labels=body["l"],
        )
    if kind == "s":
        return SeenIds(ids=body["i"])
    if kind == "p":
        return SourceProgress(partition=body["p"], offsets=body["o"])
    if kind == "r":
        return RejectedState(
            topic=body["t"],
            partition=body["p"],
            offset=body["o"],
            counters=_cells_in(body["c"]),
        )
    raise ValueError(f"unknown state record kind {kind!r}")
