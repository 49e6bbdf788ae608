"""Where state lives between batches, how it reaches the changelog, how it comes back.

The processor changes decoded records in place during a batch and marks what
it touched. A changelog write (streams.changelog) takes everything marked
since the last one, in three steps that must be sent in order:

1. every touched manager's core, embedding the items (deals, tasks, call
   days) that changed with it, and the partition-level rejection records;
2. those items' own records;
3. per partition, its source progress, alone and last.

Restoring reads the changelog back in its order (``restore``): records stay
bytes until the processor asks for a manager, whose core is then decoded and
given, per embedded item, the newer of the two copies (see streams.state).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.entities import CallIds
from streams.items import Items, Name, record_of, seq_of
from streams.repository import Manager
from streams.state import (
    ManagerState,
    RejectedState,
    SourceProgress,
    decode,
    decode_core,
    encode,
    encode_core,
    item_key,
    manager_key,
    marker_key,
    progress_key,
    rejected_key,
    split_key,
)

Send = tuple[int, bytes, bytes | None]  # partition, key, value (None: delete)

_CORE_FIELDS = tuple(
    name
    for name in ManagerState.__slots__
    if name not in ("manager_id", "partition", "deals", "tasks", "calls", "restored")
)
_SEQ = re.compile(rb'"q":(\d+)')


@dataclass
class Partition:
    """One partition's records, and what changed in them since the last write."""

    managers: dict[str, ManagerState] = field(default_factory=dict)
    cores: dict[str, bytes] = field(default_factory=dict)  # restored, not yet decoded
    rejected: dict[str, RejectedState] = field(default_factory=dict)
    progress: SourceProgress | None = None
    seq: int = 0  # the newest write of this partition, from any worker
    touched: set[str] = field(default_factory=set)
    touched_rejected: set[str] = field(default_factory=set)
    progress_touched: bool = False

    def pending(self) -> bool:
        return bool(self.touched or self.touched_rejected or self.progress_touched)


# A manager a write took, with what it took of its items: the names changed and deleted
# (names only: the values a write took are replaced once it is acknowledged).
Taken = tuple[int, ManagerState, list[tuple[Items[Any], tuple[Name, ...], set[Name]]]]


@dataclass
class Plan:
    """One changelog write as it began: the managers touched then, still to encode (by
    partition, with the write's sequence number there), the rejection records, and the
    closing records (each partition's progress then), sent once every part is."""

    managers: list[tuple[int, int, str]] = field(default_factory=list)
    rejected: list[Send] = field(default_factory=list)
    closing: list[Send] = field(default_factory=list)
    # What the parts encoded so far took, to mark again should the write not complete
    # (their records are dropped once sent: a large write's would add up to its state).
    taken: list[Taken] = field(default_factory=list)
    taken_rejected: list[tuple[int, str]] = field(default_factory=list)
    taken_progress: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.managers or self.rejected or self.closing)


@dataclass
class Write:
    """What one changelog write (or part of it) sends, step by step, and what to do once
    it is sent."""

    cores: list[Send] = field(default_factory=list)
    items: list[Send] = field(default_factory=list)
    closing: list[Send] = field(default_factory=list)
    # (items, name, item as encoded, its record): back to bytes once written
    written: list[tuple[Items[Any], Name, Any, bytes]] = field(default_factory=list)
    # to mark again should the write fail
    taken: list[Taken] = field(default_factory=list)
    taken_rejected: list[tuple[int, str]] = field(default_factory=list)
    taken_progress: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cores) + len(self.items) + len(self.closing)


class StateStore:
    def __init__(self) -> None:
        self._partitions: dict[int, Partition] = {}
        # Managers touched since the last pack, whose decoded items pack turns to bytes.
        self._loose: dict[tuple[int, str], ManagerState] = {}

    def _partition(self, partition: int) -> Partition:
        found = self._partitions.get(partition)
        if found is None:
            found = self._partitions[partition] = Partition()
        return found

    # -- the processor's side ------------------------------------------------------

    def manager(self, partition: int, manager_id: str) -> ManagerState | None:
        found = self._partitions.get(partition)
        if found is None:
            return None
        state = found.managers.get(manager_id)
        restored = found.cores.pop(manager_id, None) if state is not None else None
        if state is not None and restored is not None and self._resolve(state, restored):
            self.touch(state)
        return state

    def add_manager(self, state: ManagerState) -> None:
        found = self._partition(state.partition)
        found.managers[state.manager_id] = state
        found.touched.add(state.manager_id)
        self._loose[(state.partition, state.manager_id)] = state

    def new_manager(self, partition: int, manager_id: str) -> ManagerState:
        state = ManagerState(manager_id=manager_id, partition=partition)
        self.add_manager(state)
        return state

    def touch(self, state: Manager) -> None:
        found = self._partition(state.partition)
        found.touched.add(state.manager_id)
        self._loose[(state.partition, state.manager_id)] = found.managers[state.manager_id]

    def pack(self) -> None:
        """Turn the items decoded since the last pack back into bytes (streams.items); after
        every batch. Items are decoded to stay only by what touches their manager: events,
        deadlines passing, a restored core adopting newer copies."""
        for state in self._loose.values():
            found = self._partitions.get(state.partition)
            seq = found.seq if found is not None else 0
            for items in state.item_maps():
                items.pack(seq)
        self._loose = {}

    def rest(self) -> int:
        """Compress the items of managers nothing touched since the last call (see
        streams.items); the bytes saved. Now and then, with the memory given back."""
        saved = 0
        for found in self._partitions.values():
            for state in found.managers.values():
                for items in state.item_maps():
                    saved += items.rest()
        return saved

    def manager_ids(self, partition: int) -> list[str]:
        found = self._partitions.get(partition)
        return [] if found is None else list(found.managers)

    def managers_in(self, partitions: set[int] | None = None) -> Iterator[ManagerState]:
        """Managers of *partitions* (all when None), decoded."""
        for number in list(self._partitions):
            if partitions is not None and number not in partitions:
                continue
            for manager_id in self.manager_ids(number):
                state = self.manager(number, manager_id)
                if state is not None:
                    yield state

    def rejected(self, partition: int, topic: str) -> RejectedState | None:
        found = self._partitions.get(partition)
        return None if found is None else found.rejected.get(topic)

    def new_rejected(self, partition: int, topic: str) -> RejectedState:
        state = RejectedState(topic=topic, partition=partition)
        self._partition(partition).rejected[topic] = state
        return state

    def touch_rejected(self, partition: int, topic: str) -> None:
        self._partition(partition).touched_rejected.add(topic)

    def put_rejected(self, state: RejectedState) -> None:
        found = self._partition(state.partition)
        found.rejected[state.topic] = state
        found.touched_rejected.add(state.topic)

    def rejected_in(self, partitions: set[int] | None = None) -> Iterator[RejectedState]:
        for number, found in list(self._partitions.items()):
            if partitions is None or number in partitions:
                yield from found.rejected.values()

    def records(self, partitions: set[int] | None = None) -> list[ManagerState | RejectedState]:
        """What metrics are made of: managers and rejections of *partitions* (all: None).

        Only reads. A core restored but not used since is read from its record, not
        resolved: resolving may adopt newer items and so schedule a changelog write,
        which is the processor's to do on first use (its deadline check resolves every
        manager of a caught-up partition within seconds of a restart)."""
        found: list[ManagerState | RejectedState] = []
        for number, part in list(self._partitions.items()):
            if partitions is not None and number not in partitions:
                continue
            for manager_id, state in part.managers.items():
                raw = part.cores.get(manager_id)
                found.append(state if raw is None else decode_core(raw).state)
            found.extend(part.rejected.values())
        return found

    def progress(self, partition: int) -> SourceProgress | None:
        found = self._partitions.get(partition)
        return None if found is None else found.progress

    def set_progress(self, progress: SourceProgress) -> None:
        found = self._partition(progress.partition)
        found.progress = progress
        found.progress_touched = True

    def partitions(self) -> set[int]:
        return set(self._partitions)

    def pending(self) -> int:
        return sum(found.pending() for found in self._partitions.values())

    # -- the changelog's side ------------------------------------------------------

    def begin(self) -> Plan:
        """Start a write: take what is touched now (and clear the marks), and each touched
        partition's progress as it is now, to be sent last."""
        plan = Plan()
        for number, found in self._partitions.items():
            if not found.pending():
                continue
            found.seq += 1
            plan.managers.extend((number, found.seq, manager_id) for manager_id in found.touched)
            for topic in found.touched_rejected:
                key = rejected_key(number, topic)
                plan.rejected.append((number, key, encode(found.rejected[topic])))
                plan.taken_rejected.append((number, topic))
            if found.progress is None:
                plan.closing.append((number, marker_key(number), None))
            else:
                plan.closing.append((number, progress_key(number), encode(found.progress)))
            if found.progress_touched:
                plan.taken_progress.append(number)
            found.touched, found.touched_rejected = set(), set()
            found.progress_touched = False
        return plan

    def next_part(self, plan: Plan, managers: int) -> Write | None:
        """Encode up to *managers* more of the plan's managers (as they are now), with their
        changed items; the first part carries the rejection records. None when done."""
        if not plan.managers and not plan.rejected:
            return None
        write = Write(cores=plan.rejected)
        plan.rejected = []
        taken, plan.managers = plan.managers[:managers], plan.managers[managers:]
        for number, seq, manager_id in taken:
            found = self._partitions.get(number)
            state = found.managers.get(manager_id) if found is not None else None
            if state is not None:
                self._drain_manager(number, state, seq, write)
        plan.taken += write.taken
        return write

    def drain(self) -> Write:
        """The whole of a write at once: every part, then the closing records."""
        plan = self.begin()
        whole = Write()
        while (part := self.next_part(plan, len(plan.managers) + 1)) is not None:
            whole.cores += part.cores
            whole.items += part.items
            whole.written += part.written
            whole.taken += part.taken
        whole.closing = plan.closing
        whole.taken_rejected = plan.taken_rejected
        whole.taken_progress = plan.taken_progress
        return whole

    @staticmethod
    def _drain_manager(number: int, state: ManagerState, seq: int, write: Write) -> None:
        embedded: dict[bytes, dict[str, bytes | None]] = {}
        taken = []
        manager_id = state.manager_id
        for items in state.item_maps():
            changed, deleted = items.take_changes()
            if not changed and not deleted:
                continue
            taken.append((items, tuple(changed), deleted))
            bodies: dict[str, bytes | None] = {}
            for name, item in changed.items():
                body, raw = record_of(seq, item)
                key = item_key(items.kind, number, manager_id, name)
                write.items.append((number, key, raw))
                write.written.append((items, name, item, raw))
                bodies[str(name)] = body
            for name in deleted:
                write.items.append((number, item_key(items.kind, number, manager_id, name), None))
                bodies[str(name)] = None
            embedded[items.kind] = bodies
        write.cores.append(
            (number, manager_key(number, manager_id), encode_core(state, seq, embedded))
        )
        write.taken.append((number, state, taken))

    def requeue(self, write: Write | Plan) -> None:
        """Mark again what a write that did not complete took (all of a plan's parts)."""
        if isinstance(write, Plan):
            for number, _, manager_id in write.managers:
                self._partition(number).touched.add(manager_id)
        for number, state, taken in write.taken:
            self._partition(number).touched.add(state.manager_id)
            for items, changed, deleted in taken:
                items.mark(changed, deleted)
        for number, topic in write.taken_rejected:
            self._partition(number).touched_rejected.add(topic)
        for number in write.taken_progress:
            self._partition(number).progress_touched = True

    def written(self, write: Write) -> None:
        """The write is acknowledged: items nobody changed since go back to bytes."""
        for items, name, item, raw in write.written:
            items.settle(name, item, raw)

    # -- restoring -----------------------------------------------------------------

    def restore(self, partition: int, key: bytes, value: bytes | None) -> None:
        """Apply one changelog record, in the changelog's order."""
        kind = key[:1]
        found = self._partition(partition)
        if kind == b"m":
            manager_id = split_key(key)[2]
            self._shell(found, partition, manager_id)
            if value is None:
                found.managers.pop(manager_id, None)
                found.cores.pop(manager_id, None)
                return
            found.cores[manager_id] = value
            match = _SEQ.search(value, 0, 64)
            if match is not None:
                found.seq = max(found.seq, int(match.group(1)))
        elif kind in (b"d", b"t", b"c"):
            _, _, manager_id, name = split_key(key)
            state = self._shell(found, partition, manager_id)
            items = state.items_of(kind)
            items.restore(int(name) if kind == b"c" else name, value)
            if value is not None:
                found.seq = max(found.seq, seq_of(value))
        elif kind == b"s" and value is not None:
            # Format 1 kept every event id of a manager and day: kept as that day's call ids.
            _, _, manager_id, day = split_key(key)
            ids = list(orjson.loads(value)["i"])
            self._shell(found, partition, manager_id).calls.restore(
                int(day), record_of(0, CallIds(int(day), set(ids)))[1]
            )
        elif kind == b"r":
            topic = split_key(key)[2]
            if value is None:
                found.rejected.pop(topic, None)
            else:
                record = decode(value)
                assert isinstance(record, RejectedState)
                found.rejected[topic] = record
        elif kind == b"p" and value is not None:
            record = decode(value)
            assert isinstance(record, SourceProgress)
            found.progress = record

    @staticmethod
    def _shell(found: Partition, partition: int, manager_id: str) -> ManagerState:
        state = found.managers.get(manager_id)
        if state is None:
            state = found.managers[manager_id] = ManagerState(manager_id, partition)
        return state

    def _resolve(self, state: ManagerState, raw: bytes) -> bool:
        """Decode a restored core into *state*, and take each embedded item where it is newer
        than the item's own record (its own record was cut off by a crash); returns whether
        any was taken, so the manager is written again and such items get their own."""
        core = decode_core(raw)
        adopted = False
        for name in _CORE_FIELDS:
            setattr(state, name, getattr(core.state, name))
        for kind, entries in core.embedded.items():
            items = state.items_of(kind)
            for text, body in entries.items():
                item_name: Name = int(text) if kind == b"c" else text
                own = items.raw(item_name)
                if own is not None and seq_of(own) >= core.seq:
                    continue
                if own is None and body is None:
                    continue  # deleted either way
                items.adopt(item_name, None if body is None else items.decode_list(body))
                adopted = True
        state.restored = True
        return adopted

    def keep(self, partitions: set[int]) -> None:
        """Forget every partition but *partitions* (the worker serves no others)."""
        for number in list(self._partitions):
            if number not in partitions:
                del self._partitions[number]
