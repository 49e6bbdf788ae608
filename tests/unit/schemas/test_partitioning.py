"""The contract's partitioner is the Java client's: murmur2 of the key, made positive,
modulo the partition count."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from schemas.partitioning import Placement, murmur2_hash, partition_for

# Apache Kafka's own test vectors (clients, UtilsTest.testMurmur2): the Java values.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2.items())
def test_the_hash_is_the_java_clients(key: bytes, expected: int) -> None:
    assert murmur2_hash(key) == expected


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2.items())
def test_the_partition_is_what_the_java_client_picks(key: bytes, expected: int) -> None:
    # Java: Utils.toPositive(Utils.murmur2(key)) % numPartitions; toPositive = & 0x7fffffff.
    for partitions in (1, 2, 3, 4, 7, 12, 100):
        assert partition_for(key, partitions) == (expected & 0x7FFFFFFF) % partitions


def test_aiokafka_producers_agree_for_every_key_and_count() -> None:
    keys = [f"m-{n:03d}".encode() for n in range(300)] + ["Анна".encode(), b""]
    for partitions in (1, 4, 6, 16):
        everyone = list(range(partitions))
        for key in keys:
            assert partition_for(key, partitions) == DefaultPartitioner()(key, everyone, everyone)


def test_a_placement_answers_the_same_from_memory_and_stays_bounded() -> None:
    placement = Placement(4)
    keys = [f"k-{n}".encode() for n in range(70_000)]
    first = [placement(key) for key in keys]
    assert [placement(key) for key in keys] == first
    assert first == [partition_for(key, 4) for key in keys]
    assert len(placement._hashes) <= 65_536
    with pytest.raises(ValueError, match="at least one"):
        Placement(0)
