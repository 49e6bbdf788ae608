"""A manager's deals, tasks or call days: decoded while in use, bytes while not.

A worker holds every open deal and task of every manager it serves, so they
are kept as the compact bytes of their changelog record while nothing
touches them, and decoded on first use. What changes is marked, so the next
changelog write carries exactly the items that changed.

``get`` is for items about to change (decoded, kept decoded, marked);
``peek`` only reads (decoded for the caller, nothing kept or marked).
``pack``, after every batch, turns the items the batch decoded back into
bytes. Left decoded until the next changelog write, a catch-up's items
would all be objects at once (a write of a large company takes seconds,
and batches keep running meanwhile); their many small strings, freed
together afterwards, would leave the allocator's arenas pinned by the
long-lived records allocated between them, and the RSS at its peak.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

import orjson


class Item(Protocol):
    def to_list(self) -> Any: ...

    @property
    def closed_day(self) -> int | None: ...


def stamped(seq: int, closed_day: int | None, body: bytes) -> bytes:
    """An item's own record: the sequence number of its write and the local day it
    closed (so expiry needs no decoding), then its body."""
    return b"%d|%s|" % (seq, b"" if closed_day is None else b"%d" % closed_day) + body


def seq_of(raw: bytes) -> int:
    return int(raw[: raw.index(b"|")])


def closed_day_of(raw: bytes) -> int | None:
    start = raw.index(b"|") + 1
    day = raw[start : raw.index(b"|", start)]
    return int(day) if day else None


def body_of(raw: bytes) -> bytes:
    return raw[raw.index(b"|", raw.index(b"|") + 1) + 1 :]


def record_of(seq: int, item: Item | bytes) -> tuple[bytes, bytes]:
    """An item's body and its own record stamped *seq*, from the item decoded or from
    the record it rests as (restamped, not encoded again)."""
    if isinstance(item, bytes):
        body = body_of(item)
        return body, stamped(seq, closed_day_of(item), body)
    body = orjson.dumps(item.to_list())
    return body, stamped(seq, item.closed_day, body)


T = TypeVar("T", bound=Item)
Name = str | int  # a deal or task id, or a call day's ordinal


CHANGED, DELETED = True, False


class Items(Generic[T]):
    __slots__ = ("_from_list", "_loose", "_marks", "_values", "kind")

    def __init__(self, kind: bytes, from_list: Callable[[Any], T]) -> None:
        self.kind = kind
        self._from_list = from_list
        self._values: dict[Name, T | bytes] = {}
        # Since the last write: CHANGED (put or got) or DELETED. One small dict, not two
        # sets: every manager has three of these, most of them empty most of the time.
        self._marks: dict[Name, bool] = {}
        self._loose: list[Name] = []  # decoded since the last pack

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: Name) -> bool:
        return name in self._values

    def names(self) -> list[Name]:
        return list(self._values)

    def decode_list(self, body: Any) -> T:
        return self._from_list(body)

    def _decode(self, value: T | bytes) -> T:
        if isinstance(value, bytes):
            return self._from_list(orjson.loads(body_of(value)))
        return value

    def get(self, name: Name) -> T | None:
        """The item, to be changed: kept decoded and written with the next write."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bytes):
            value = self._values[name] = self._decode(value)
            self._loose.append(name)
        self._marks[name] = CHANGED
        return value

    def peek(self, name: Name) -> T | None:
        """The item, only to read: nothing is kept or marked."""
        value = self._values.get(name)
        return None if value is None else self._decode(value)

    def put(self, name: Name, item: T) -> None:
        self._values[name] = item
        self._marks[name] = CHANGED
        self._loose.append(name)

    def pack(self, seq: int) -> None:
        """Keep the items decoded since the last pack as bytes again (stamped *seq*, a
        write's sequence number no older than any record they came from). Their marks
        stay: the next write still carries them."""
        if not self._loose:
            return
        values = self._values
        for name in self._loose:
            value = values.get(name)
            if value is not None and not isinstance(value, bytes):
                values[name] = record_of(seq, value)[1]
        self._loose = []

    def delete(self, name: Name) -> None:
        if self._values.pop(name, None) is not None:
            self._marks[name] = DELETED
        elif self._marks.get(name) is CHANGED:
            del self._marks[name]

    def peek_all(self) -> Iterator[tuple[Name, T]]:
        """Every item, only to read (a changed one is put back with ``put``)."""
        for name, value in list(self._values.items()):
            yield name, self._decode(value)

    def peek_containing(self, needle: bytes) -> Iterator[tuple[Name, T]]:
        """Items that may mention *needle* (decoded ones, and records containing it)."""
        # Matched in one pass over the values (a manager may hold hundreds of items and
        # this runs on every regulated stage entry); only the matches are decoded.
        found = [
            (name, value)
            for name, value in self._values.items()
            if not isinstance(value, bytes) or needle in value
        ]
        for name, value in found:
            yield name, self._decode(value)

    def expired(self, cutoff: int) -> list[Name]:
        """Items closed before the local day *cutoff*."""
        found = []
        for name, value in self._values.items():
            day = closed_day_of(value) if isinstance(value, bytes) else value.closed_day
            if day is not None and day < cutoff:
                found.append(name)
        return found

    # -- the changelog's side ---------------------------------------------------

    def take_changes(self) -> tuple[dict[Name, T | bytes], set[Name]]:
        """What changed since the last write (items as they are now: decoded, or packed
        records) and what was deleted; both are then cleared."""
        if not self._marks:
            return {}, set()
        changed: dict[Name, T | bytes] = {}
        deleted: set[Name] = set()
        for name, mark in self._marks.items():
            if mark is CHANGED:
                changed[name] = self._values[name]
            else:
                deleted.add(name)
        self._marks = {}
        return changed, deleted

    def mark(self, changed: Iterable[Name], deleted: set[Name]) -> None:
        """Mark again what a write that did not complete took."""
        for name in changed:
            if name in self._values:
                self._marks.setdefault(name, CHANGED)
        for name in deleted:
            if name not in self._values:
                self._marks.setdefault(name, DELETED)

    def settle(self, name: Name, item: T | bytes, raw: bytes) -> None:
        """After a write: keep *item* as its record *raw* unless it changed again."""
        if name not in self._marks and self._values.get(name) is item:
            self._values[name] = raw

    def restore(self, name: Name, raw: bytes | None) -> None:
        """A record read from the changelog (None: deleted); nothing is marked."""
        if raw is None:
            self._values.pop(name, None)
        else:
            self._values[name] = raw

    def raw(self, name: Name) -> bytes | None:
        value = self._values.get(name)
        return value if isinstance(value, bytes) else None

    def adopt(self, name: Name, item: T | None) -> None:
        """The newer copy from the core record (None: deleted): kept and marked, so the
        next write gives it its own record again."""
        if item is None:
            if self._values.pop(name, None) is not None:
                self._marks[name] = DELETED
            return
        self.put(name, item)
