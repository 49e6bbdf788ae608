"""Where records live between batches, and how they reach the changelog.

The processor mutates decoded records in place during a batch and marks the
ones it touched; at the end of the batch each touched record is written to
the changelog once, however many events changed it. That single write per
record and batch is what keeps salespulse near bare Faust speed, where a
table write per event costs a changelog record per event.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from streams.state import RECORD_KINDS, Record, decode, encode, partition_of_key


class StateStore:
    """Decoded records over a key -> record-or-bytes mapping.

    Records restored from the changelog arrive as bytes and are decoded on
    first use, so a restart does not pay to decode state nobody touches.
    """

    def __init__(self, data: MutableMapping[bytes, Any]):
        self._data = data
        self._dirty: dict[bytes, int] = {}
        self._deleted: dict[bytes, int] = {}

    def get(self, key: bytes) -> Record | None:
        value = self._data.get(key)
        if value is None or not isinstance(value, bytes | bytearray):
            return value
        record = decode(bytes(value))
        self._data[key] = record
        return record

    def put(self, partition: int, key: bytes, record: Record) -> None:
        self._data[key] = record
        self._dirty[key] = partition
        self._deleted.pop(key, None)

    def touch(self, partition: int, key: bytes) -> None:
        self._dirty[key] = partition

    def delete(self, partition: int, key: bytes) -> None:
        self._data.pop(key, None)
        self._dirty.pop(key, None)
        self._deleted[key] = partition

    def pending(self) -> int:
        return len(self._dirty) + len(self._deleted)

    def drain(self) -> list[tuple[int, bytes, bytes | None]]:
        """Encode every touched record once: (partition, key, value or None for deleted)."""
        writes: list[tuple[int, bytes, bytes | None]] = []
        for key, partition in self._dirty.items():
            record = self._data.get(key)
            if record is not None and not isinstance(record, bytes | bytearray):
                writes.append((partition, key, encode(record)))
        writes.extend((partition, key, None) for key, partition in self._deleted.items())
        self._dirty.clear()
        self._deleted.clear()
        return writes

    def requeue(self, writes: list[tuple[int, bytes, bytes | None]]) -> None:
        """Mark drained writes as pending again: their write did not complete."""
        for partition, key, value in writes:
            if value is None:
                if key not in self._data:
                    self._deleted.setdefault(key, partition)
            elif key in self._data:
                self._dirty.setdefault(key, partition)

    def items_in(
        self, partitions: set[int] | None, kinds: tuple[bytes, ...] = RECORD_KINDS
    ) -> Iterator[tuple[bytes, Record]]:
        """Records of the given partitions (all when None) and kinds, decoding as needed."""
        for key in list(self._data.keys()):
            if key[:1] not in kinds:
                continue
            if partitions is not None and partition_of_key(key) not in partitions:
                continue
            record = self.get(key)
            if record is not None:
                yield key, record
