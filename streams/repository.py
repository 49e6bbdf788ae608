"""What the domain asks of the state it works on, and nothing of how it is kept.

The aggregation (streams.aggregate) and the processor (streams.processor)
read and change a manager's numbers and items only through these protocols.
The state layer implements them: packed and compressed items
(streams.items), cells as arrays (streams.cells), the schedule of counts
owed (streams.schedule), all held by streams.state.ManagerState and found
through streams.store.StateStore. So the domain can be read, tested and
changed without knowing a byte of the changelog, and the storage can change
without touching a rule of the domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Protocol, TypeVar

from streams.entities import CallIds, CellKey, DealState, GaugeCell, TaskState

Name = str | int  # a deal or task id, or a call day's ordinal

T = TypeVar("T")


class Counters(Protocol):
    """Numbers by cell: a manager's all-history counters, its current-state gauges, an
    open period's gauges."""

    def add(self, cell: CellKey, amount: float = 1.0) -> None: ...

    def get(self, cell: CellKey, default: Any = None) -> Any: ...

    def pop(self, cell: CellKey, default: Any = ...) -> Any: ...


WonCustomer = tuple[str, str, int]  # pipeline, segment, customer_key


class OpenPeriod(Protocol):
    """A calendar period that can still change: its end (epoch seconds, exclusive), its
    gauge cells, and the customers with a deal won in it (each counted once)."""

    @property
    def end(self) -> float: ...

    @property
    def cells(self) -> Counters: ...

    def note_customer(self, won: WonCustomer) -> bool:
        """Remember a customer won in the period; whether it is the first time."""
        ...


class ItemMap(Protocol[T]):
    """A manager's deals, tasks or call days, by name."""

    def get(self, name: Name) -> T | None:
        """The item, to be changed: it is written with the manager's next write."""
        ...

    def peek(self, name: Name) -> T | None:
        """The item, only to read."""
        ...

    def put(self, name: Name, item: T) -> None: ...

    def delete(self, name: Name) -> None: ...

    def soonest(self, offsets: Mapping[str, float]) -> float:
        """The earliest time any item waits for (``alarms``, by kind, each kind's offset
        added); infinity if none."""
        ...

    def due(self, offsets: Mapping[str, float], clock: float) -> list[Name]:
        """The items with a wait (as in ``soonest``) that *clock* has passed."""
        ...

    def expired(self, cutoff: int) -> list[Name]:
        """The items closed before the local day *cutoff*."""
        ...


class Owed(Protocol):
    """Counts settled early but due when the tasks clock passes a time (streams.schedule)."""

    def add(self, at: float, cell: CellKey) -> None: ...

    def remove(self, at: float, cell: CellKey) -> bool: ...

    def soonest(self) -> float: ...

    def take_before(self, clock: float) -> list[tuple[float, CellKey]]: ...


class Manager(Protocol):
    """One manager's state, as the domain sees it."""

    offsets: dict[str, int]  # last source offset applied, per topic
    watermark: float
    stream_watermarks: dict[str, float]
    next_check: float
    next_deal_check: float
    labels: dict[str, list[str]]
    # Restored from the changelog, its next deadlines not yet found again.
    restored: bool
    # Restored from a core whose gauges miss cells its items count in now.
    gauges_outdated: bool

    @property
    def manager_id(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def counters(self) -> Counters: ...

    @property
    def gauges(self) -> Counters: ...

    @property
    def histograms(self) -> MutableMapping[CellKey, list[float]]: ...

    @property
    def periods(self) -> Mapping[str, OpenPeriod]: ...

    @property
    def deals(self) -> ItemMap[DealState]: ...

    @property
    def tasks(self) -> ItemMap[TaskState]: ...

    @property
    def calls(self) -> ItemMap[CallIds]: ...

    @property
    def owed(self) -> Owed: ...

    def add(self, cell: CellKey, amount: float = 1.0) -> None: ...

    def rebuild_gauges(self) -> None:
        """Count the current-state gauges again from every item."""
        ...

    def shift(self, before: tuple[GaugeCell, ...], after: tuple[GaugeCell, ...]) -> None:
        """Move an item's contribution to the current-state gauges."""
        ...

    def open_period(self, key: str, end: float) -> OpenPeriod:
        """The open period *key*, begun now if it was not open."""
        ...

    def close_period(self, key: str) -> None: ...

    def tasks_of_deal(self, deal_id: str) -> Iterator[TaskState]:
        """The tasks held for *deal_id* (created or not), only to read."""
        ...


class Rejections(Protocol):
    """Messages of one source partition sent on before a manager could be known: the
    last offset counted and the counts."""

    offset: int

    @property
    def counters(self) -> Counters: ...


class Repository(Protocol):
    """Where the processor finds managers, and tells what it changed."""

    def manager(self, partition: int, manager_id: str) -> Manager | None: ...

    def new_manager(self, partition: int, manager_id: str) -> Manager: ...

    def manager_ids(self, partition: int) -> list[str]: ...

    def managers_in(self, partitions: set[int] | None = None) -> Iterable[Manager]: ...

    def touch(self, state: Manager) -> None:
        """*state* changed: it goes into the next changelog write."""
        ...

    def pack(self) -> None:
        """A batch is done: what it decoded may rest again."""
        ...

    def rejected(self, partition: int, topic: str) -> Rejections | None: ...

    def new_rejected(self, partition: int, topic: str) -> Rejections: ...

    def touch_rejected(self, partition: int, topic: str) -> None: ...
