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

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from streams.cells import Cells, Reader, Writer, spelled_cells
from streams.entities import (
    CallIds,
    CellKey,
    DealState,
    GaugeCell,
    TaskState,
)
from streams.items import Item, Items
from streams.schedule import Schedule

ItemT = TypeVar("ItemT", bound=Item)

SEP = "\x1f"
_SEP = SEP.encode()


# What a gauge cell may hold once its last item has left: float rounding of the amounts
# added and taken away, relative to the cell's size.
_LEFTOVER = 1e-9

FORMAT = 2  # version 1 kept deals, tasks and event ids inside one manager record
# Which current-state gauge cells a core record's gauges hold: 2 added open deals by
# age band and by amount. A core written before holds fewer than its items count in:
# the manager's gauges are rebuilt from its items before it is used (rebuild_gauges).
GAUGE_CELLS = 2


@dataclass(slots=True)
class OpenPeriod:
    """A calendar period that can still change: its end, its gauge cells, and the
    customers won in it (pipeline, segment, customer key): at most one per deal won in
    the period, and forgotten with it."""

    end: float  # epoch seconds, exclusive
    cells: Cells = field(default_factory=Cells)
    # None until the first customer is won: an empty set costs 216 bytes, and a
    # manager holds several open periods, most of them with no customer won.
    customers: set[tuple[str, str, int]] | None = None

    def note_customer(self, won: tuple[str, str, int]) -> bool:
        """Remember a customer won in the period; whether it is the first time."""
        if self.customers is None:
            self.customers = {won}
            return True
        if won in self.customers:
            return False
        self.customers.add(won)
        return True


def _customer_rows(customers: set[tuple[str, str, int]]) -> list[list[Any]]:
    """A period's customers for its core record: [pipeline, segment, [keys...]] each."""
    grouped: dict[tuple[str, str], list[int]] = {}
    for pipeline, segment, customer in customers:
        grouped.setdefault((pipeline, segment), []).append(customer)
    return [[pipeline, segment, sorted(keys)] for (pipeline, segment), keys in grouped.items()]


def _customers_of(rows: list[list[Any]]) -> set[tuple[str, str, int]]:
    return {(pipeline, segment, key) for pipeline, segment, keys in rows for key in keys}


def _period_entry(period: OpenPeriod, cells: Writer) -> list[Any]:
    entry: list[Any] = [period.end, cells.rows(period.cells)]
    if period.customers:
        entry.append(_customer_rows(period.customers))
    return entry


def _period_of(entry: list[Any], cells: Reader) -> OpenPeriod:
    """An open period from its core record entry; one written before customers were
    kept (no third element) has none."""
    customers = _customers_of(entry[2]) if len(entry) > 2 else None
    return OpenPeriod(entry[0], cells.cells(entry[1]), customers or None)


ENGINES = ("memory", "rocksdb")
_engine = "memory"


def use_engine(name: str) -> None:
    """Where the items of managers made from now on rest (settings.state_engine): packed
    in memory (streams.items) or in RocksDB (streams.rocks_items); chosen once at start."""
    global _engine
    if name not in ENGINES:
        raise ValueError(f"unknown state engine {name!r}; choose from {', '.join(ENGINES)}")
    if name == "rocksdb":
        import streams.rocks_items  # noqa: F401  (fails here, at start, if not installed)
    _engine = name


def item_map(
    kind: bytes, from_list: Callable[[Any], ItemT], partition: int, manager_id: str
) -> Items[ItemT]:
    """A manager's empty map of one kind of item, in the engine chosen."""
    if _engine == "memory":
        return Items(kind, from_list)
    from streams.rocks_items import RocksItems

    return RocksItems(kind, from_list, partition, manager_id)


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
    # Restored from the changelog, its next deadlines not yet found again (the domain
    # does that before it uses the manager: streams.aggregate.Aggregator.index).
    restored: bool = False
    # Its gauges were written before the cells its items count in now (GAUGE_CELLS).
    gauges_outdated: bool = False
    deals: Items[DealState] = field(init=False)
    tasks: Items[TaskState] = field(init=False)
    calls: Items[CallIds] = field(init=False)  # keyed by local day ordinal

    def __post_init__(self) -> None:
        partition, manager_id = self.partition, self.manager_id
        self.deals = item_map(b"d", DealState.from_list, partition, manager_id)
        self.tasks = item_map(b"t", TaskState.from_list, partition, manager_id)
        self.calls = item_map(b"c", CallIds.from_list, partition, manager_id)

    def add(self, cell: CellKey, amount: float = 1.0) -> None:
        self.counters.add(cell, amount)

    def shift(self, before: tuple[GaugeCell, ...], after: tuple[GaugeCell, ...]) -> None:
        """Move an item's contribution to the current-state gauges.

        A cell goes when what is left of it is no more than rounding: amounts
        are floats, and the last deal leaving a stage must leave no series of
        a few millionths of a cent behind.
        """
        if before == after:
            return
        gauges = self.gauges
        for cell, weight in before:
            value = gauges.get(cell, 0.0)
            if value - weight > _LEFTOVER * max(1.0, abs(value)):
                gauges.add(cell, -weight)
            else:
                gauges.pop(cell, None)
        for cell, weight in after:
            gauges.add(cell, weight)

    def rebuild_gauges(self) -> None:
        """Count the current-state gauges again from every deal and task; once, for a
        core restored from a record written before the gauges held all their cells."""
        self.gauges = Cells()
        for _, deal in self.deals.peek_all():
            self.shift((), deal.open_cells())
        for _, task in self.tasks.peek_all():
            self.shift((), task.open_cells())
        self.gauges_outdated = False

    def open_period(self, key: str, end: float) -> OpenPeriod:
        period = self.periods.get(key)
        if period is None:
            period = self.periods[key] = OpenPeriod(end)
        return period

    def close_period(self, key: str) -> None:
        del self.periods[key]

    def tasks_of_deal(self, deal_id: str) -> Iterator[TaskState]:
        # A search of the packed tasks for the deal's id, at C speed: a manager may hold
        # hundreds of tasks, and this runs on every regulated stage entry. An index by
        # deal would cost memory for every task (docs/performance.md, Memory: about
        # 125 MiB at 500,000 tasks) to save a search of a few kilobytes.
        for _, task in self.tasks.peek_containing(orjson.dumps(deal_id)):
            if task.deal_id == deal_id:
                yield task

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
        "P": {key: _period_entry(p, cells) for key, p in state.periods.items()},
        "h": cells.rows(state.histograms),
        "g": cells.rows(state.gauges),
        "G": 1 if state.gauges_outdated else GAUGE_CELLS,
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
        periods={key: _period_of(entry, cells) for key, entry in body["P"].items()},
        histograms=cells.series(body["h"]),
        gauges=cells.cells(body["g"]),
    )
    state.gauges_outdated = body.get("G", 1) < GAUGE_CELLS
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
