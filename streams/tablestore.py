"""The state table's storage: salespulse's own state store, fed changelog batches whole.

Faust restores a table (and keeps standby copies of other workers' tables)
by applying its changelog record by record. With the changelog consumed in
whole batches (streams.batching) this store hands each fetched batch to the
worker's StateStore in one loop. Records stay bytes until the worker first
needs them (streams.store decodes on first use), so a restore costs little
more than reading the changelog.

Once an active partition is recovered, the worker's memory is its newest
state, and the store ignores that partition's changelog from then on (Faust
may go on fetching it); standby partitions keep following theirs.

Faust's own in-memory store drops standby partitions after a recovery; this
one keeps them, for a quick takeover, and drops only partitions the worker
no longer serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from faust import stores
from faust.stores import memory
from faust.types import TP

from streams.store import StateStore

SCHEME = "salespulse"
stores.STORES.aliases.setdefault(SCHEME, f"{__name__}:BatchStore")


class BatchStore(memory.Store[bytes, Any]):
    def __post_init__(self) -> None:
        super().__post_init__()
        self.state_store = StateStore()
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
        restore = self.state_store.restore
        live = self._live
        for event in batch:
            message = event.message
            partition = message.partition
            if partition in live:
                continue
            for record in getattr(message, "records", None) or (message,):
                restore(partition, record.key, record.value)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        self.state_store.keep({tp.partition for tp in active_tps | standby_tps})
        self._live = {tp.partition for tp in active_tps}
