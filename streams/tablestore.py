"""The state table's storage: an in-memory dict that takes changelog batches whole.

Faust restores a table (and keeps standby copies of other workers' tables)
by applying its changelog record by record. With the changelog consumed in
whole batches (streams.batching) this store applies each fetched batch in
one loop: key -> raw bytes, or deleted for a tombstone. Records stay bytes
until the worker first needs them (streams.store decodes on first use), so
a restore costs a dict assignment per record.

Once an active partition is recovered, the worker's memory is its newest
state, and the store ignores that partition's changelog from then on (Faust
may go on fetching it); standby partitions keep following theirs.

Faust's own in-memory store remembers each key's partition in a second dict
to drop partitions the worker no longer serves; salespulse keys carry their
partition (streams.state), so this store reads it from the key instead and
keeps standby partitions too, for a quick takeover.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from faust import stores
from faust.stores import memory
from faust.types import TP

from streams.state import partition_of_key

SCHEME = "salespulse"
stores.STORES.aliases.setdefault(SCHEME, f"{__name__}:BatchStore")


class BatchStore(memory.Store[bytes, Any]):
    def __post_init__(self) -> None:
        super().__post_init__()
        # Active partitions whose recovery has completed: the worker's memory is the
        # newest state there, and changelog records (its own writes) must not replace it.
        self._live: set[int] = set()

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        self._live.clear()  # until recovery completes, every partition may be restored

    def apply_changelog_batch(
        self,
        batch: Iterable[Any],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        data = self.data
        live = self._live
        for event in batch:
            message = event.message
            if message.partition in live:
                continue
            for record in getattr(message, "records", None) or (message,):
                if record.value is None:
                    data.pop(record.key, None)
                else:
                    data[record.key] = record.value

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        served = {tp.partition for tp in active_tps | standby_tps}
        for key in [key for key in self.data if partition_of_key(key) not in served]:
            del self.data[key]
        self._live = {tp.partition for tp in active_tps}
