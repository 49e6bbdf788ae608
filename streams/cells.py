"""Counter and gauge cells: a metric's short name and label values, and a number.

A manager's state holds a few hundred cells (a funnel by stage, product and
channel alone can be a hundred), and a company's managers mostly share the
same cells. So each distinct cell key gets a number once for the process
(its slot), and a manager's cells are two arrays: the slots it uses, in
order, and their values, found by bisection. That is 12 bytes a cell, where
a dict of tuples to floats took about 32 (at 10,000 managers, 64 MiB of
cells became about 20).

In the changelog, a record lists the strings its cells use once, and each
cell as their positions in that list: a tenth of the bytes of spelling every
label out in every cell. The positions of a cell's strings are worked out
once per process, so encoding costs no more than before.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    ValuesView,
)
from typing import Any

from streams.entities import CellKey

# A slot is the number of the cell's metric (its first string) in the high bits and
# the cell's number within that metric in the low ones. A record's slots are sorted,
# so the cells of one metric sit side by side and a scrape finds them by bisection
# instead of looking at every cell of the record for every metric it exports.
_METRIC_BITS = 24
_NUMBER_MASK = (1 << _METRIC_BITS) - 1
_MAX_METRICS = 1 << (32 - _METRIC_BITS)  # slots are unsigned 32-bit array items

_SLOTS: dict[CellKey, int] = {}  # cell key -> slot, for this process
_METRICS: dict[str, int] = {}  # a cell's first string -> its metric's number
_CELLS: list[list[CellKey]] = []  # metric number -> its cells (the one tuple of each key)
_STRINGS: list[str] = []  # position -> string, for this process
_POSITIONS: dict[str, int] = {}
_KEY_POSITIONS: dict[CellKey, tuple[int, ...]] = {}
_MISSING = object()


def slot_of(cell: CellKey) -> int:
    slot = _SLOTS.get(cell)
    if slot is None:
        metric = _METRICS.get(cell[0])
        if metric is None:
            if len(_CELLS) >= _MAX_METRICS:
                raise OverflowError(f"more than {_MAX_METRICS} kinds of cell")
            metric = _METRICS[cell[0]] = len(_CELLS)
            _CELLS.append([])
        members = _CELLS[metric]
        if len(members) > _NUMBER_MASK:
            raise OverflowError(f"more than {_NUMBER_MASK + 1} cells of {cell[0]!r}")
        slot = _SLOTS[cell] = metric << _METRIC_BITS | len(members)
        members.append(cell)
    return slot


def metric_cells(name: str) -> list[CellKey]:
    """Every cell key of the metric *name* this process knows, by number (it only grows)."""
    metric = _METRICS.get(name)
    return _CELLS[metric] if metric is not None else []


def cell_at(slot: int) -> CellKey:
    """The cell key of a slot (``slot_of``'s inverse)."""
    return _CELLS[slot >> _METRIC_BITS][slot & _NUMBER_MASK]


_cell_at = cell_at


def key_of(cell: CellKey) -> CellKey:
    """The one tuple of this process for *cell*."""
    return _cell_at(slot_of(cell))


class _Items(ItemsView[CellKey, float]):
    _mapping: Cells

    def __iter__(self) -> Iterator[tuple[CellKey, float]]:
        cells = self._mapping
        return zip(map(_cell_at, cells._slots), cells._values, strict=True)


class _Values(ValuesView[float]):
    _mapping: Cells

    def __iter__(self) -> Iterator[float]:
        return iter(self._mapping._values)


class Cells(MutableMapping[CellKey, float]):
    """One record's cells: a mapping of cell keys to numbers, kept as two arrays."""

    __slots__ = ("_slots", "_values")

    def __init__(self, cells: Mapping[Any, float] | Iterable[tuple[CellKey, float]] = ()):
        pairs = cells.items() if isinstance(cells, Mapping) else cells
        ordered = sorted((slot_of(cell), float(value)) for cell, value in pairs)
        self._slots = array("I", [slot for slot, _ in ordered])
        self._values = array("d", [value for _, value in ordered])

    def _position(self, cell: CellKey) -> int:
        """Where *cell* is, or -1."""
        slot = _SLOTS.get(cell)
        if slot is None:
            return -1
        slots = self._slots
        at = bisect_left(slots, slot)
        return at if at < len(slots) and slots[at] == slot else -1

    def get(self, cell: CellKey, default: Any = None) -> Any:
        at = self._position(cell)
        return default if at < 0 else self._values[at]

    def __getitem__(self, cell: CellKey) -> float:
        at = self._position(cell)
        if at < 0:
            raise KeyError(cell)
        return self._values[at]

    def _place(self, cell: CellKey) -> int:
        """Where *cell* is, added at 0 if it was not there."""
        slot = slot_of(cell)
        slots = self._slots
        at = bisect_left(slots, slot)
        if at == len(slots) or slots[at] != slot:
            slots.insert(at, slot)
            self._values.insert(at, 0.0)
        return at

    def add(self, cell: CellKey, amount: float = 1.0) -> None:
        """Add *amount* to a cell (a counter, a period's or a gauge's; new ones start at 0)."""
        self._values[self._place(cell)] += amount

    def __setitem__(self, cell: CellKey, value: float) -> None:
        self._values[self._place(cell)] = value

    def __delitem__(self, cell: CellKey) -> None:
        self.pop(cell)

    def pop(self, cell: CellKey, default: Any = _MISSING) -> Any:
        at = self._position(cell)
        if at < 0:
            if default is _MISSING:
                raise KeyError(cell)
            return default
        value = self._values[at]
        del self._slots[at]
        del self._values[at]
        return value

    def __contains__(self, cell: object) -> bool:
        return isinstance(cell, tuple) and self._position(cell) >= 0

    def __iter__(self) -> Iterator[CellKey]:
        return map(_cell_at, self._slots)

    def slots_and_values(self) -> tuple[array[int], array[float]]:
        """Every cell's slot (see ``cell_at``) and value, in slot order: read, never change."""
        return self._slots, self._values

    def numbers_of_metric(self, name: str) -> tuple[list[int], array[float]]:
        """The cells whose first string is *name*: each one's number within its metric
        (a dense index: ``metric_cells(name)[number]`` is its key) and its value."""
        slots, values = self.slots_of_metric(name)
        return [slot & _NUMBER_MASK for slot in slots], values

    def slots_of_metric(self, name: str) -> tuple[array[int], array[float]]:
        """The slots and values of the cells whose first string is *name* (see
        ``cell_at``), found by bisection: for a scrape that sums many records' cells."""
        metric = _METRICS.get(name)
        slots = self._slots
        if metric is None:
            return slots[0:0], self._values[0:0]
        start = bisect_left(slots, metric << _METRIC_BITS)
        end = bisect_left(slots, (metric + 1) << _METRIC_BITS, start)
        return slots[start:end], self._values[start:end]

    def of_metric(self, name: str) -> Iterator[tuple[CellKey, float]]:
        """The cells whose first string is *name* (each key whole), found by bisection."""
        metric = _METRICS.get(name)
        if metric is None:
            return
        slots = self._slots
        start = bisect_left(slots, metric << _METRIC_BITS)
        end = bisect_left(slots, (metric + 1) << _METRIC_BITS, start)
        members = _CELLS[metric]
        values = self._values
        for at in range(start, end):
            yield members[slots[at] & _NUMBER_MASK], values[at]

    def __len__(self) -> int:
        return len(self._slots)

    def items(self) -> ItemsView[CellKey, float]:
        return _Items(self)

    def values(self) -> ValuesView[float]:
        return _Values(self)

    def __repr__(self) -> str:
        return f"Cells({dict(self.items())!r})"


def _positions(cell: CellKey) -> tuple[int, ...]:
    found = _KEY_POSITIONS.get(cell)
    if found is None:
        positions = []
        for text in cell:
            position = _POSITIONS.get(text)
            if position is None:
                position = _POSITIONS[text] = len(_STRINGS)
                _STRINGS.append(text)
            positions.append(position)
        found = _KEY_POSITIONS[key_of(cell)] = tuple(positions)
    return found


class Writer:
    """Cells of one record, with the strings they use."""

    __slots__ = ("_used",)

    def __init__(self) -> None:
        self._used: set[int] = set()

    def rows(self, cells: Mapping[CellKey, Any]) -> list[list[Any]]:
        """[position, ..., value] per cell (value: a number or a list of numbers)."""
        return self.pairs(cells.items())

    def pairs(self, pairs: Iterable[tuple[CellKey, Any]]) -> list[list[Any]]:
        """``rows`` of (cell, value) pairs, in their order, a cell perhaps more than once."""
        used = self._used
        rows = []
        for cell, value in pairs:
            positions = _positions(cell)
            used.update(positions)
            rows.append([*positions, value])
        return rows

    def strings(self) -> list[list[Any]]:
        return [[position, _STRINGS[position]] for position in self._used]


class Reader:
    """Cells of one record, given the strings it listed."""

    __slots__ = ("_strings",)

    def __init__(self, strings: Iterable[list[Any]]) -> None:
        self._strings: dict[int, str] = {position: text for position, text in strings}

    def cells(self, rows: list[list[Any]]) -> Cells:
        strings = self._strings
        return Cells((tuple(strings[position] for position in row[:-1]), row[-1]) for row in rows)

    def pairs(self, rows: list[list[Any]]) -> list[tuple[CellKey, Any]]:
        strings = self._strings
        return [(tuple(strings[position] for position in row[:-1]), row[-1]) for row in rows]

    def series(self, rows: list[list[Any]]) -> dict[CellKey, list[float]]:
        strings = self._strings
        return {key_of(tuple(strings[p] for p in row[:-1])): row[-1] for row in rows}


def spelled_cells(rows: list[list[Any]]) -> Cells:
    """Cells written with their strings spelled out (records of format 1)."""
    return Cells((tuple(row[:-1]), row[-1]) for row in rows)
