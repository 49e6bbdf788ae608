"""Which partition a CRM message belongs to: part of the event contract.

The key is the ``manager_id`` as UTF-8, and its partition is the Java
client's default: ``(murmur2(key) & 0x7fffffff) % partitions``. aiokafka and
the Java client do this by default; librdkafka (confluent-kafka for Python,
Go, .NET and Node, and kcat) does not unless told ``partitioner=murmur2_random``.
All of a manager's state lives in the partition its key maps to, so the
worker checks every message against this function (streams.processor).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

# Managers are few and keys repeat; hostile input with ever new keys only refills it.
_CACHE_LIMIT = 65_536


def murmur2_hash(key: bytes) -> int:
    """The Java client's ``Utils.murmur2`` as a signed 32-bit integer."""
    value = int(murmur2(key)) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java client's default partitioner picks for *key*."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions


class Placement:
    """``partition_for`` with a fixed partition count, remembering each key's hash.

    The hash is pure Python (about 2 µs for a short key); a worker sees the
    same few thousand keys over and over, so each is hashed once.
    """

    def __init__(self, partitions: int):
        if partitions < 1:
            raise ValueError("a topic has at least one partition")
        self.partitions = partitions
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= _CACHE_LIMIT:
                self._hashes.clear()
            hashed = self._hashes[key] = int(murmur2(key)) & 0x7FFFFFFF
        return hashed % self.partitions
