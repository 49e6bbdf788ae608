"""Counter and gauge cells: a metric's short name and label values, and a number.

A manager's state holds a few hundred cells (a funnel by stage, product and
channel alone can be a hundred), and a company's managers mostly share the
same cells. So a cell's key tuple is kept once for all managers, and so are
whole values up to a few thousand (most counts): about half the memory.

In the changelog, a record lists the strings its cells use once, and each
cell as their positions in that list: a tenth of the bytes of spelling every
label out in every cell. The positions of a cell's strings are worked out
once per process, so encoding costs no more than before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CellKey = tuple[str, ...]

_KEYS: dict[CellKey, CellKey] = {}
_WHOLE = tuple(float(n) for n in range(4097))
_STRINGS: list[str] = []  # position -> string, for this process
_POSITIONS: dict[str, int] = {}
_KEY_POSITIONS: dict[CellKey, tuple[int, ...]] = {}


def shared(value: float) -> float:
    if 0.0 <= value < 4097.0 and value.is_integer():
        return _WHOLE[int(value)]
    return value


def key_of(cell: CellKey) -> CellKey:
    """The one tuple of this process for *cell*."""
    return _KEYS.setdefault(cell, cell)


def bump(cells: dict[CellKey, float], cell: CellKey, amount: float = 1.0) -> None:
    """Add *amount* to a cell (a counter, a period's or a gauge's)."""
    old = cells.get(cell)
    if old is None:
        cell = key_of(cell)
        old = 0.0
    cells[cell] = shared(old + amount)


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

    def rows(self, cells: dict[CellKey, Any]) -> list[list[Any]]:
        """[position, ..., value] per cell (value: a number or a list of numbers)."""
        used = self._used
        rows = []
        for cell, value in cells.items():
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

    def cells(self, rows: list[list[Any]]) -> dict[CellKey, float]:
        strings = self._strings
        cells: dict[CellKey, float] = {}
        for row in rows:
            cells[key_of(tuple(strings[position] for position in row[:-1]))] = shared(
                float(row[-1])
            )
        return cells

    def series(self, rows: list[list[Any]]) -> dict[CellKey, list[float]]:
        strings = self._strings
        return {key_of(tuple(strings[p] for p in row[:-1])): row[-1] for row in rows}


def spelled_cells(rows: list[list[Any]]) -> dict[CellKey, float]:
    """Cells written with their strings spelled out (records of format 1)."""
    return {key_of(tuple(row[:-1])): shared(float(row[-1])) for row in rows}
