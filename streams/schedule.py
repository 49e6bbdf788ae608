"""Counts a manager owes at a later time: one cell each, due when the tasks clock passes.

Some outcomes are settled before they may be counted: a task done days before
its deadline still counts among the tasks whose deadline passed only once it
has, and a regulation met early counts as met only at its deadline (counting
either at once would read the overdue rate low and compliance high until
then). Kept in the manager's core rather than waited for by the task or deal:
most tasks are done and most checks met early, and then the item need neither
wake at its deadline nor be kept until then.

A manager may owe a few dozen (every open task's deadline is one), so they
are two arrays side by side, the times sorted and the cells' slots
(streams.cells), 12 bytes an entry, not a tuple and a float object each.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from streams.cells import cell_at, slot_of
from streams.entities import CellKey


class Schedule:
    __slots__ = ("_slots", "_times")

    def __init__(self, entries: Iterable[tuple[float, CellKey]] = ()) -> None:
        self._times = array("d")
        self._slots = array("I")
        for at, cell in entries:
            self.add(at, cell)

    def __len__(self) -> int:
        return len(self._times)

    def __iter__(self) -> Iterator[tuple[float, CellKey]]:
        """The entries, soonest first."""
        for at, slot in zip(self._times, self._slots, strict=True):
            yield at, cell_at(slot)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Schedule({list(self)!r})"

    def soonest(self) -> float:
        """The earliest time owed (infinity if none)."""
        return self._times[0] if self._times else float("inf")

    def add(self, at: float, cell: CellKey) -> None:
        position = bisect_right(self._times, at)
        self._times.insert(position, at)
        self._slots.insert(position, slot_of(cell))

    def remove(self, at: float, cell: CellKey) -> bool:
        """Take one entry of *cell* at *at* out, to be counted now; whether one was owed."""
        slot = slot_of(cell)
        times = self._times
        position = bisect_left(times, at)
        while position < len(times) and times[position] == at:
            if self._slots[position] == slot:
                del times[position]
                del self._slots[position]
                return True
            position += 1
        return False

    def take_before(self, clock: float) -> list[tuple[float, CellKey]]:
        """The entries due before *clock*, soonest first, taken out."""
        end = bisect_left(self._times, clock)
        if not end:
            return []
        due = [(self._times[n], cell_at(self._slots[n])) for n in range(end)]
        del self._times[:end]
        del self._slots[:end]
        return due
