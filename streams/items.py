"""A manager's deals, tasks or call days: decoded while in use, packed while not.

A worker holds every open deal and task of every manager it serves, so an
item nothing touches rests as the bytes of its changelog record, and is
decoded on first use. What changes is marked, so the next changelog write
carries exactly the items that changed.

Resting items are not kept one object each: a bytes object, its name as a
string and a dict slot would cost more than the record itself (at a million
keys, about 130 of every 300 bytes). They are packed side by side into a few
byte strings per map instead, hashed by name into buckets of a few dozen
items (BUCKET_ITEMS), and found by searching their bucket (a few kilobytes
at most, so the search costs about what a decode does). Each entry is

    \\x00 <name> \\x01 <alarms> \\x01 <record>

Names are printable text (the contract's identifiers, or a call day's
ordinal) and records are JSON behind their stamp, so neither ever holds the
two separator bytes. ``alarms`` lists the times the item waits for (a task's
due time, a regulation's deadline: ``Item.alarms``), so a clock passing them
finds the items concerned without decoding any other.

``get`` is for items about to change (decoded, kept decoded, marked);
``peek`` only reads (decoded for the caller, nothing kept or marked).
``pack``, after every batch, packs the items the batch decoded again. Left
decoded until the next changelog write, a catch-up's items would all be
objects at once (a write of a large company takes seconds, and batches keep
running meanwhile).

Most managers' items sit unused for minutes between events, and their JSON
repeats itself (labels, stages, id prefixes, times): ``rest``, called now and
then (streams.store), compresses the buckets of a map nothing used since the
previous call, to about a fifth. The first use after that decompresses them
again (tens of microseconds), and they stay so while in use.
"""

from __future__ import annotations

import re
import zlib
from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import orjson

from streams.entities import Alarms

BUCKET_ITEMS = 32  # items per bucket, on average, before the buckets double
REST_MIN_BYTES = 512  # packed entries worth compressing once nothing uses them


class Item(Protocol):
    def to_list(self) -> Any: ...

    @property
    def closed_day(self) -> int | None: ...

    def alarms(self) -> Alarms: ...


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


def _alarm_field(alarms: Alarms) -> bytes:
    return b";".join(b"%s%r" % (kind.encode(), at) for kind, at in alarms)


def _earliest(alarms: Iterable[tuple[str, float]], offsets: Mapping[str, float]) -> float | None:
    found = None
    for kind, at in alarms:
        offset = offsets.get(kind)
        if offset is not None and (found is None or at + offset < found):
            found = at + offset
    return found


def _parsed(field: bytes) -> Iterator[tuple[str, float]]:
    for part in field.split(b";"):
        yield chr(part[0]), float(part[1:])


T = TypeVar("T", bound=Item)
Name = str | int  # a deal or task id, or a call day's ordinal


CHANGED, DELETED = True, False
_START, _NEXT = b"\x00", b"\x01"
_ALARMED = re.compile(rb"\x00([^\x01]*)\x01([^\x01]+)\x01")
_CLOSED = re.compile(rb"\x00([^\x01]*)\x01[^\x01]*\x01\d+\|(\d+)\|")


class Items(Generic[T]):
    __slots__ = (
        "_buckets",
        "_cold",
        "_count",
        "_from_list",
        "_int_names",
        "_loose",
        "_marks",
        "_times",
        "_used",
        "_values",
        "kind",
    )

    def __init__(self, kind: bytes, from_list: Callable[[Any], T]) -> None:
        self.kind = kind
        self._from_list = from_list
        self._int_names = kind == b"c"  # call days are named by their ordinal
        self._values: dict[Name, T] = {}  # decoded; never also packed
        self._buckets: list[bytes] = [b""]  # packed entries, by hash of name
        self._count = 0  # packed entries
        self._cold = False  # the buckets are compressed (see rest)
        self._used = False  # buckets used since the last rest
        # The packed entries' alarm times, sorted, by kind: the soonest without a search.
        self._times: dict[str, array[float]] = {}
        # Since the last write: CHANGED (put or got) or DELETED. One small dict, not two
        # sets: every manager has three of these, most of them empty most of the time.
        self._marks: dict[Name, bool] = {}
        self._loose: list[Name] = []  # decoded since the last pack

    # -- packed entries ---------------------------------------------------------

    def _open(self) -> list[bytes]:
        """The buckets, to be used: decompressed if they were at rest."""
        if self._cold:
            self._buckets = [zlib.decompress(bucket) if bucket else b"" for bucket in self._buckets]
            self._cold = False
        self._used = True
        return self._buckets

    def rest(self) -> int:
        """Compress the buckets if nothing used them since the last call; the bytes saved."""
        if self._used:
            self._used = False
            return 0
        if self._cold:
            return 0
        before = sum(map(len, self._buckets))
        if before < REST_MIN_BYTES:
            return 0
        self._buckets = [zlib.compress(bucket, 1) if bucket else b"" for bucket in self._buckets]
        self._cold = True
        return before - sum(map(len, self._buckets))

    def _name_of(self, raw: bytes) -> Name:
        return int(raw) if self._int_names else raw.decode()

    @staticmethod
    def _text(name: Name) -> bytes:
        return name.encode() if isinstance(name, str) else b"%d" % name

    def _bucket_of(self, name: Name) -> int:
        return hash(name) & (len(self._buckets) - 1)

    def _find(self, name: Name) -> tuple[int, int, int, int, int] | None:
        """Where *name*'s entry is: its bucket, the entry's start, its alarms' start, its
        record's start, and the entry's end."""
        text = self._text(name)
        index = self._bucket_of(name)
        bucket = self._open()[index]
        start = bucket.find(_START + text + _NEXT)
        if start < 0:
            return None
        alarms = start + len(text) + 2
        record = bucket.index(_NEXT, alarms) + 1
        end = bucket.find(_START, record)
        return index, start, alarms, record, len(bucket) if end < 0 else end

    def _packed(self, name: Name) -> bytes | None:
        at = self._find(name)
        if at is None:
            return None
        index, _, _, record, end = at
        return self._buckets[index][record:end]

    def _unpack(self, name: Name) -> bytes | None:
        """Take *name*'s entry out of its bucket; its record, or None if not packed."""
        at = self._find(name)
        if at is None:
            return None
        index, start, alarms, record, end = at
        bucket = self._buckets[index]
        self._buckets[index] = bucket[:start] + bucket[end:]
        self._count -= 1
        if record - 1 > alarms:
            self._forget_times(bucket[alarms : record - 1])
        return bucket[record:end]

    def _pack(self, name: Name, raw: bytes, alarms: Alarms) -> None:
        text = self._text(name)
        index = self._bucket_of(name)
        self._open()
        self._buckets[index] = b"".join(
            (self._buckets[index], _START, text, _NEXT, _alarm_field(alarms), _NEXT, raw)
        )
        self._count += 1
        self._note_times(alarms)
        if self._count > BUCKET_ITEMS * len(self._buckets):
            self._grow()

    def _note_times(self, alarms: Alarms) -> None:
        """Add a packed entry's alarm times to the sorted arrays (either engine's)."""
        for kind, moment in alarms:
            times = self._times.get(kind)
            if times is None:
                times = self._times[kind] = array("d")
            insort(times, moment)

    def _forget_times(self, field: bytes) -> None:
        """Take an unpacked entry's alarm times, as its alarm field lists them, out again."""
        for kind, moment in _parsed(field):
            times = self._times[kind]
            del times[bisect_left(times, moment)]

    def _grow(self) -> None:
        size = len(self._buckets) * 2
        parts: list[list[bytes]] = [[] for _ in range(size)]
        for bucket in self._open():
            for entry in bucket.split(_START)[1:]:
                name = self._name_of(entry[: entry.index(_NEXT)])
                parts[hash(name) & (size - 1)].append(entry)
        self._buckets = [_START + _START.join(part) if part else b"" for part in parts]

    def _entry(self, entry: bytes) -> tuple[Name, bytes]:
        """The name and record of one entry (without its leading separator)."""
        split = entry.index(_NEXT)
        return self._name_of(entry[:split]), entry[entry.index(_NEXT, split + 1) + 1 :]

    def _entries(self) -> Iterator[tuple[Name, bytes]]:
        for bucket in self._open():
            for entry in bucket.split(_START)[1:]:
                yield self._entry(entry)

    def _discard(self, name: Name) -> bool:
        """Forget *name*, decoded or packed; whether it was held."""
        return self._values.pop(name, None) is not None or self._unpack(name) is not None

    def _decode(self, raw: bytes) -> T:
        return self._from_list(orjson.loads(body_of(raw)))

    # -- the processor's side ---------------------------------------------------

    def __len__(self) -> int:
        return len(self._values) + self._count

    def __contains__(self, name: Name) -> bool:
        return name in self._values or self._find(name) is not None

    def names(self) -> list[Name]:
        return [*self._values, *(name for name, _ in self._entries())]

    def decode_list(self, body: Any) -> T:
        return self._from_list(body)

    def get(self, name: Name) -> T | None:
        """The item, to be changed: kept decoded and written with the next write."""
        value = self._values.get(name)
        if value is None:
            raw = self._unpack(name)
            if raw is None:
                return None
            value = self._values[name] = self._decode(raw)
            self._loose.append(name)
        self._marks[name] = CHANGED
        return value

    def peek(self, name: Name) -> T | None:
        """The item, only to read: nothing is kept or marked."""
        value = self._values.get(name)
        if value is not None:
            return value
        raw = self._packed(name)
        return None if raw is None else self._decode(raw)

    def put(self, name: Name, item: T) -> None:
        if name not in self._values:
            self._unpack(name)
        self._values[name] = item
        self._marks[name] = CHANGED
        self._loose.append(name)

    def pack(self, seq: int) -> None:
        """Pack the items decoded since the last pack again (stamped *seq*, a write's
        sequence number no older than any record they came from). Their marks stay: the
        next write still carries them."""
        if not self._loose:
            return
        values = self._values
        for name in self._loose:
            value = values.pop(name, None)
            if value is not None:
                self._pack(name, record_of(seq, value)[1], value.alarms())
        self._loose = []

    def delete(self, name: Name) -> None:
        if self._discard(name):
            self._marks[name] = DELETED
        elif self._marks.get(name) is CHANGED:
            del self._marks[name]

    def peek_all(self) -> Iterator[tuple[Name, T]]:
        """Every item, only to read (a changed one is put back with ``put``)."""
        decoded = list(self._values.items())
        packed = list(self._entries())
        yield from decoded
        for name, raw in packed:
            yield name, self._decode(raw)

    def peek_containing(self, needle: bytes) -> Iterator[tuple[Name, T]]:
        """Items that may mention *needle* (decoded ones, and records containing it)."""
        # Searched for in each bucket at C speed (a manager may hold hundreds of items
        # and this runs on every regulated stage entry); only the matches are decoded.
        found: list[tuple[Name, T | bytes]] = list(self._values.items())
        for bucket in self._open():
            at = bucket.find(needle)
            while at >= 0:
                start = bucket.rfind(_START, 0, at)
                end = bucket.find(_START, at)
                end = len(bucket) if end < 0 else end
                found.append(self._entry(bucket[start + 1 : end]))
                at = bucket.find(needle, end)
        for name, value in found:
            yield name, value if not isinstance(value, bytes) else self._decode(value)

    def soonest(self, offsets: Mapping[str, float]) -> float:
        """The earliest of ``alarms`` (infinity if none), without a search."""
        found = float("inf")
        for value in self._values.values():
            at = _earliest(value.alarms(), offsets)
            if at is not None and at < found:
                found = at
        for kind, times in self._times.items():
            offset = offsets.get(kind)
            if offset is not None and times and times[0] + offset < found:
                found = times[0] + offset
        return found

    def alarms(self, offsets: Mapping[str, float]) -> list[tuple[Name, float]]:
        """Each item waiting for a time, with the earliest of its waits whose kind
        *offsets* names, that offset added; no packed item is decoded."""
        found = []
        for name, value in self._values.items():
            at = _earliest(value.alarms(), offsets)
            if at is not None:
                found.append((name, at))
        for bucket in self._open():
            for match in _ALARMED.finditer(bucket):
                at = _earliest(_parsed(match[2]), offsets)
                if at is not None:
                    found.append((self._name_of(match[1]), at))
        return found

    def due(self, offsets: Mapping[str, float], clock: float) -> list[Name]:
        """Items with a wait (as in ``alarms``) that *clock* has passed."""
        return [name for name, at in self.alarms(offsets) if at < clock]

    def expired(self, cutoff: int) -> list[Name]:
        """Items closed before the local day *cutoff*."""
        found = []
        for name, value in self._values.items():
            day = value.closed_day
            if day is not None and day < cutoff:
                found.append(name)
        for bucket in self._open():
            for match in _CLOSED.finditer(bucket):
                if int(match[2]) < cutoff:
                    found.append(self._name_of(match[1]))
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
            if mark is not CHANGED:
                deleted.add(name)
                continue
            value = self._values.get(name)
            if value is None:
                raw = self._packed(name)
                assert raw is not None, f"item {name!r} marked changed but not held"
                changed[name] = raw
            else:
                changed[name] = value
        self._marks = {}
        return changed, deleted

    def mark(self, changed: Iterable[Name], deleted: set[Name]) -> None:
        """Mark again what a write that did not complete took."""
        for name in changed:
            if name in self:
                self._marks.setdefault(name, CHANGED)
        for name in deleted:
            if name not in self:
                self._marks.setdefault(name, DELETED)

    def settle(self, name: Name, item: T | bytes, raw: bytes) -> None:
        """After a write: pack *item* as its record *raw* unless it changed again (a
        packed one stays as it is)."""
        if (
            not isinstance(item, bytes)
            and name not in self._marks
            and self._values.get(name) is item
        ):
            del self._values[name]
            self._pack(name, raw, item.alarms())

    def restore(self, name: Name, raw: bytes | None) -> None:
        """A record read from the changelog (None: deleted); nothing is marked."""
        self._discard(name)
        if raw is not None:
            self._pack(name, raw, self._decode(raw).alarms())

    def raw(self, name: Name) -> bytes | None:
        """The record *name* rests as (None if it is decoded now, or not held)."""
        return None if name in self._values else self._packed(name)

    def adopt(self, name: Name, item: T | None) -> None:
        """The newer copy from the core record (None: deleted): kept and marked, so the
        next write gives it its own record again."""
        if item is None:
            if self._discard(name):
                self._marks[name] = DELETED
            return
        self.put(name, item)
