"""A manager's deals, tasks or call days with their resting records in RocksDB.

The alternative storage engine to streams.items (``state_engine = "rocksdb"``):
the same map, the same marks, the same decoded items while in use and alarm
times in sorted arrays, but an item at rest is one RocksDB record instead of
an entry in a packed bucket. RocksDB keeps what does not fit its write buffer
and block cache in files, compressed by block, so neither the packing of
buckets nor their compression at rest applies: ``rest`` has nothing to do.

Every map of the process shares one database in a temporary directory, opened
on first use and removed when the process exits: the changelog stays the only
durable copy of the state, and a restart restores from it as before. Keys are

    <partition> US <manager> US <kind> US <map number> US <name>

The map number tells apart two maps of the same manager and kind that live at
the same time (a store being replaced by a restore while the old one is still
referenced); a map no longer referenced deletes its range of keys. Values are

    <alarms> \\x01 <record>

as in a packed entry (streams.items), so a clock passing a time, expiry and
the search for a deal's tasks read the records without decoding them.
"""

from __future__ import annotations

import atexit
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteOptions,
)

from streams.entities import Alarms
from streams.items import Item, Items, Name, _alarm_field, _earliest, _parsed, closed_day_of

T = TypeVar("T", bound=Item)

SEP = b"\x1f"
_NEXT = b"\x01"
WRITE_BUFFER_BYTES = 16 << 20  # per memtable; two at most before writes wait for a flush
BLOCK_CACHE_BYTES = 16 << 20

_db: Rdict | None = None
_numbers = itertools.count()


def database() -> Rdict:
    """The process's database, opened in a fresh temporary directory on first use."""
    global _db
    if _db is None:
        path = tempfile.mkdtemp(prefix="salespulse-rocks-")
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_compression_type(DBCompressionType.lz4())
        options.set_write_buffer_size(WRITE_BUFFER_BYTES)
        options.set_max_write_buffer_number(2)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(BLOCK_CACHE_BYTES))
        options.set_block_based_table_factory(table)
        db = Rdict(path, options)
        atexit.register(_remove, db, path)
        # The changelog is the durable copy: a write-ahead log would only cost time.
        writes = WriteOptions()
        setattr(writes, "disable_wal", True)  # noqa: B010  (a property; its stub says method)
        db.set_write_options(writes)
        _db = db
    return _db


def _remove(db: Rdict, path: str) -> None:
    global _db
    _db = None
    db.close()
    shutil.rmtree(path, ignore_errors=True)


class RocksItems(Items[T]):
    __slots__ = ("_db", "_prefix", "_upper")

    def __init__(
        self, kind: bytes, from_list: Callable[[Any], T], partition: int, manager_id: str
    ) -> None:
        super().__init__(kind, from_list)
        self._buckets = []
        self._db = database()
        self._prefix = b"%d%s%s%s%s%s%d%s" % (
            partition,
            SEP,
            manager_id.encode(),
            SEP,
            kind,
            SEP,
            next(_numbers),
            SEP,
        )
        self._upper = self._prefix[:-1] + bytes([SEP[0] + 1])  # just past every key of the map

    def __del__(self) -> None:
        if self._count and _db is self._db:
            self._db.delete_range(self._prefix, self._upper)

    def rest(self) -> int:
        """Nothing to compress: RocksDB compresses what it keeps in files."""
        return 0

    # -- resting records --------------------------------------------------------

    def _key(self, name: Name) -> bytes:
        return self._prefix + self._text(name)

    def __contains__(self, name: Name) -> bool:
        return name in self._values or self._db.get(self._key(name)) is not None

    def _packed(self, name: Name) -> bytes | None:
        value: bytes | None = self._db.get(self._key(name))
        return None if value is None else value[value.index(_NEXT) + 1 :]

    def _unpack(self, name: Name) -> bytes | None:
        key = self._key(name)
        value: bytes | None = self._db.get(key)
        if value is None:
            return None
        self._db.delete(key)
        self._count -= 1
        split = value.index(_NEXT)
        if split:
            self._forget_times(value[:split])
        return value[split + 1 :]

    def _pack(self, name: Name, raw: bytes, alarms: Alarms) -> None:
        self._db.put(self._key(name), _alarm_field(alarms) + _NEXT + raw)
        self._count += 1
        self._note_times(alarms)

    def _resting(self) -> Iterator[tuple[Name, bytes]]:
        """Every resting name with its value (alarms, then record), in key order."""
        if not self._count:
            return
        bounds = ReadOptions()
        bounds.set_iterate_upper_bound(self._upper)
        skip = len(self._prefix)
        records = cast(  # raw mode: keys and values are bytes
            Iterator[tuple[bytes, bytes]], self._db.items(from_key=self._prefix, read_opt=bounds)
        )
        for key, value in records:
            yield self._name_of(key[skip:]), value

    def _entries(self) -> Iterator[tuple[Name, bytes]]:
        for name, value in list(self._resting()):
            yield name, value[value.index(_NEXT) + 1 :]

    # -- what reads the resting records without decoding them ---------------------

    def peek_containing(self, needle: bytes) -> Iterator[tuple[Name, T]]:
        found: list[tuple[Name, T | bytes]] = list(self._values.items())
        for name, value in self._resting():
            record = value[value.index(_NEXT) + 1 :]
            if needle in record:
                found.append((name, record))
        for name, item in found:
            yield name, item if not isinstance(item, bytes) else self._decode(item)

    def alarms(self, offsets: Mapping[str, float]) -> list[tuple[Name, float]]:
        found = []
        for name, item in self._values.items():
            at = _earliest(item.alarms(), offsets)
            if at is not None:
                found.append((name, at))
        if any(times for times in self._times.values()):
            for name, value in self._resting():
                split = value.index(_NEXT)
                if split:
                    at = _earliest(_parsed(value[:split]), offsets)
                    if at is not None:
                        found.append((name, at))
        return found

    def expired(self, cutoff: int) -> list[Name]:
        found = []
        for name, item in self._values.items():
            day = item.closed_day
            if day is not None and day < cutoff:
                found.append(name)
        for name, value in self._resting():
            day = closed_day_of(value[value.index(_NEXT) + 1 :])
            if day is not None and day < cutoff:
                found.append(name)
        return found
