"""Every private part of Faust and aiokafka the worker relies on, in one place.

Why: the worker's consumer (streams.batching) passes each partition's fetch on
as one message, and Faust has no public hook for that. So it takes Faust's
fetch loop apart: it waits for records and turns them into messages the way
Faust does, marks the batch's other offsets as acknowledged in Faust's
bookkeeping (acknowledged offsets, gaps, the read and committed offsets), and
keeps a hole before the first acknowledged offset from stopping commits for
good. It also sets aiokafka's fetch wait, which Faust fixes at 1500 ms with no
setting to change it; the option is public in aiokafka but only as a
constructor argument, and Faust builds the consumer. The changelog writer
builds produce batches on aiokafka's producer, which Faust keeps to itself.
Neither Faust nor aiokafka offers a public way to do any of these.

Checked on: faust-streaming 0.15.3, aiokafka 0.14.0 and mode-streaming 0.7.1,
the versions pinned exactly in pyproject.toml (:data:`CHECKED_ON`).

Every read or write of a private attribute goes through a function here;
the worker's subclasses override private methods by name, and each such
method is listed in :data:`OVERRIDDEN`. tests/unit/streams/test_faust_compat.py
checks that each name still exists with the expected kind and parameters
on the installed versions, that the installed versions are the ones checked
on, that no other module touches these names, and that every private method
the worker overrides is listed and no private name of its own shadows one of
Faust, mode or aiokafka.

On an upgrade of faust-streaming, aiokafka or mode-streaming: run
tests/unit/streams/test_faust_compat.py first. It lists everything that moved at
once. For each name, read the new version's code and adapt the function here
(or the override in streams.batching), replace it by a public API if one has
appeared, then update :data:`CHECKED_ON` and the versions above, and run
tests/unit/streams/test_batching.py and the end-to-end and skipped-offsets
integration tests, which exercise what these names do, not only that they
exist.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ProducerT
from faust.types.tuples import ConsumerMessage

#: Distribution versions the names below were read and checked on.
CHECKED_ON: Mapping[str, str] = {
    "faust-streaming": "0.15.3",
    "aiokafka": "0.14.0",
    "mode-streaming": "0.7.1",
}


class Kind(enum.Enum):
    METHOD = "method"
    COROUTINE = "coroutine method"
    #: Set on each instance (by ``__init__``), not on the class.
    INSTANCE_ATTRIBUTE = "instance attribute"


@dataclass(frozen=True)
class Private:
    """A private name of *owner* (or one of its bases) the worker depends on.

    ``parameters`` are a method's parameter names, ``self`` included, as the
    worker calls or overrides it.
    """

    owner: type
    name: str
    kind: Kind
    parameters: tuple[str, ...] = ()


#: Private names read, written or called through the functions of this module.
ACCESSED: tuple[Private, ...] = (
    Private(faust_aiokafka.Consumer, "_wait_next_records", Kind.COROUTINE, ("self", "timeout")),
    Private(faust_aiokafka.Consumer, "_to_message", Kind.METHOD, ("self", "tp", "record")),
    Private(
        faust_aiokafka.Consumer,
        "_add_gap",
        Kind.COROUTINE,
        ("self", "tp", "offset_from", "offset_to"),
    ),
    Private(faust_aiokafka.Consumer, "_buffered_partitions", Kind.INSTANCE_ATTRIBUTE),
    Private(faust_aiokafka.Consumer, "_acked", Kind.INSTANCE_ATTRIBUTE),
    Private(faust_aiokafka.Consumer, "_committed_offset", Kind.INSTANCE_ATTRIBUTE),
    Private(faust_aiokafka.Consumer, "_read_offset", Kind.INSTANCE_ATTRIBUTE),
    Private(faust_aiokafka.Consumer, "_gap", Kind.INSTANCE_ATTRIBUTE),
    Private(faust_aiokafka.Producer, "_ensure_producer", Kind.METHOD, ("self",)),
    Private(aiokafka.AIOKafkaConsumer, "_fetch_max_wait_ms", Kind.INSTANCE_ATTRIBUTE),
)

#: Private methods the worker's subclasses (streams.batching) override; each
#: override keeps these parameters and calls the base's through ``super()``.
OVERRIDDEN: tuple[Private, ...] = (
    Private(faust.App, "_new_transport", Kind.METHOD, ("self",)),
    Private(faust.App, "_new_consumer", Kind.METHOD, ("self",)),
    Private(faust_aiokafka.Consumer, "_new_consumer_thread", Kind.METHOD, ("self",)),
    Private(faust_aiokafka.Consumer, "_new_offset", Kind.METHOD, ("self", "tp")),
    Private(
        faust_aiokafka.AIOKafkaConsumerThread,
        "_create_worker_consumer",
        Kind.METHOD,
        ("self", "transport"),
    ),
)


class OffsetRanges(Protocol):
    """What the worker uses of the interval tree Faust keeps a partition's gaps in."""

    def addi(self, begin: int, end: int) -> None: ...

    def merge_overlaps(self) -> None: ...


async def wait_next_records(
    consumer: faust_aiokafka.Consumer,
    timeout: float,  # noqa: ASYNC109 (Faust's signature)
) -> tuple[Mapping[TP, list[Any]] | None, set[TP] | None]:
    """Faust's wait for the next fetch: records per partition, and the partitions
    active when the fetch began (``None`` for a client-only app)."""
    return await consumer._wait_next_records(timeout)


def to_message(consumer: faust_aiokafka.Consumer, tp: TP, record: Any) -> ConsumerMessage:
    """Faust's message for one aiokafka record, as its fetch loop makes it."""
    return consumer._to_message(tp, record)


def buffered_partitions(consumer: faust_aiokafka.Consumer) -> set[TP]:
    """Partitions paused because their streams' buffers are full; records fetched
    for them are still delivered."""
    return consumer._buffered_partitions


def acked_offsets(consumer: faust_aiokafka.Consumer) -> MutableMapping[TP, list[int]]:
    """Per partition, acknowledged offsets not yet committed."""
    return consumer._acked


def committed_offsets(consumer: faust_aiokafka.Consumer) -> MutableMapping[TP, int | None]:
    """Per partition, the last offset committed (``None`` before the first commit)."""
    return consumer._committed_offset


def read_offsets(consumer: faust_aiokafka.Consumer) -> MutableMapping[TP, int | None]:
    """Per partition, the last offset the fetch loop passed on (``None`` at first)."""
    return consumer._read_offset


def offset_gaps(consumer: faust_aiokafka.Consumer) -> MutableMapping[TP, OffsetRanges]:
    """Per partition, offsets known to hold nothing to acknowledge: commits pass them."""
    return consumer._gap


async def add_gap(consumer: faust_aiokafka.Consumer, tp: TP, first: int, last: int) -> None:
    """Record offsets *first* to *last* (inclusive) as a gap, the way Faust's
    fetch loop does for offsets it skips."""
    await consumer._add_gap(tp, first, last)


def set_fetch_max_wait(consumer: aiokafka.AIOKafkaConsumer, milliseconds: int) -> None:
    """Replace the ``fetch_max_wait_ms`` a consumer was built with; takes effect
    when the consumer starts (and builds its fetcher), not after."""
    consumer._fetch_max_wait_ms = milliseconds


def running_producer(producer: ProducerT) -> aiokafka.AIOKafkaProducer:
    """The aiokafka producer under Faust's; raises faust.exceptions.NotReady
    before Faust's producer has started."""
    return cast(faust_aiokafka.Producer, producer)._ensure_producer()
