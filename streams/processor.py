"""One batch of source messages in, state updated, rejections out.

Every consumed message ends in exactly one outcome, counted in
``salespulse_events_total``: processed, duplicate, late or rejected. A message
delivered again after a crash (its offset already absorbed by the state) ends
in no new outcome at all, because its first delivery already has one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from salespulse.settings import Settings
from schemas.events import Event
from streams.aggregate import Aggregator
from streams.intake import Rejection, parse_event
from streams.state import (
    ManagerState,
    RejectedState,
    SeenIds,
    manager_key,
    rejected_key,
    seen_key,
)
from streams.store import StateStore

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RawMessage:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    message: RawMessage
    rejection: Rejection


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Processor:
    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        clock: Callable[[], datetime] = _utc_now,
    ):
        self.store = store
        self.aggregator = Aggregator(settings)
        self.zone = settings.zone
        self.horizon_days = settings.dedupe_horizon_days
        self.max_future_skew = timedelta(seconds=settings.max_future_skew_seconds)
        self.clock = clock
        self.family = {
            settings.topic_deals: "deals",
            settings.topic_tasks: "tasks",
            settings.topic_calls: "calls",
        }
        self.configured_managers = frozenset(settings.managers)
        self.max_unconfigured = settings.max_unconfigured_managers
        self._unconfigured: dict[int, set[str]] = {}  # partition -> managers tracked
        # Origins pack (offset, topic) into one int: offset * 4 + topic index.
        self.topic_index = {topic: index for index, topic in enumerate(settings.source_topics)}

    def process(self, topic: str, messages: Sequence[RawMessage]) -> list[DeadLetter]:
        """Apply *messages* of *topic* in offset order; returns what must be dead-lettered."""
        dead: list[DeadLetter] = []
        now = self.clock()
        family = self.family[topic]
        for message in messages:
            try:
                result = parse_event(
                    message.value,
                    message.key,
                    family,
                    max_bytes=MAX_EVENT_BYTES,
                    now=now,
                    max_future_skew=self.max_future_skew,
                )
                if not isinstance(result, Rejection):
                    result = self.aggregator.check(result) or result
                if isinstance(result, Rejection):
                    self._reject(topic, message, result, dead)
                else:
                    self._accept(topic, message, result, dead)
            except Exception as exc:  # a bug must cost one event, never the worker
                log.exception(
                    "processing %s[%d]@%d failed", topic, message.partition, message.offset
                )
                failure = Rejection("processing_error", f"{type(exc).__name__}: {exc}")
                self._reject(topic, message, failure, dead)
        return dead

    def tick(self, partitions: set[int], clock: float) -> int:
        """Settle deadlines *clock* has passed in caught-up *partitions*; counts changes."""
        changed = 0
        for key, record in self.store.items_in(partitions, kinds=(b"m",)):
            if isinstance(record, ManagerState) and self.aggregator.advance(record, clock, clock):
                self.store.touch(record.partition, key)
                changed += 1
        return changed

    # -- outcomes --------------------------------------------------------------

    def _reject(
        self, topic: str, message: RawMessage, rejection: Rejection, dead: list[DeadLetter]
    ) -> None:
        """Queue a dead letter; it is counted only once the broker has it (``record``)."""
        state = self.store.get(rejected_key(message.partition, topic))
        if isinstance(state, RejectedState) and message.offset <= state.offset:
            return  # counted and dead-lettered before a restart
        dead.append(DeadLetter(topic, message, rejection))

    def record_rejections(self, letters: Sequence[DeadLetter]) -> None:
        """Count dead letters the broker has acknowledged.

        Counting only after the acknowledgement means no state, whichever agent
        writes it to the changelog, can claim a rejection whose dead letter
        might still be lost: a crash in between delivers the message again and
        it is dead-lettered again (at least once, never zero times).
        """
        for letter in letters:
            message = letter.message
            key = rejected_key(message.partition, letter.topic)
            state = self.store.get(key)
            if not isinstance(state, RejectedState):
                state = RejectedState(topic=letter.topic, partition=message.partition)
            if message.offset <= state.offset:
                continue
            state.offset = message.offset
            event_type = letter.rejection.event_type or "invalid"
            cells = state.counters
            for cell in (
                ("events_total", letter.topic, event_type, "rejected"),
                ("events_rejected_total", letter.topic, letter.rejection.reason),
            ):
                cells[cell] = cells.get(cell, 0.0) + 1.0
            self.store.put(message.partition, key, state)

    def _admit(self, partition: int, manager_id: str) -> bool:
        """Whether a manager without state may get some: configured ones always."""
        if manager_id in self.configured_managers:
            return True
        tracked = self._unconfigured.get(partition)
        if tracked is None:  # first use since (re)assignment: count what the state holds
            tracked = {
                record.manager_id
                for _, record in self.store.items_in({partition}, kinds=(b"m",))
                if isinstance(record, ManagerState)
                and record.manager_id not in self.configured_managers
            }
            self._unconfigured[partition] = tracked
        if len(tracked) >= self.max_unconfigured:
            return False
        tracked.add(manager_id)
        return True

    def _accept(
        self, topic: str, message: RawMessage, event: Event, dead: list[DeadLetter]
    ) -> None:
        key = manager_key(message.partition, event.manager_id)
        state = self.store.get(key)
        if not isinstance(state, ManagerState):
            if not self._admit(message.partition, event.manager_id):
                limit = Rejection(
                    "manager_limit",
                    f"manager {event.manager_id!r} is not configured and this partition already "
                    f"tracks {self.max_unconfigured} unconfigured managers; add it to [managers] "
                    "or raise max_unconfigured_managers",
                    event.type,
                )
                self._reject(topic, message, limit, dead)
                return
            state = ManagerState(manager_id=event.manager_id, partition=message.partition)
        origin = message.offset * 4 + self.topic_index[topic]
        if message.offset <= state.offsets.get(topic, -1):
            # Redelivered after a restart: its effect is in the state already.
            # Its id may not be, if that record was lost; remember it again.
            self._remember(state, event, origin)
            return
        if self._seen_elsewhere(state, event.event_id, origin):
            outcome = "duplicate"
        else:
            self._remember(state, event, origin)
            outcome = "late" if self.aggregator.apply(state, event) else "processed"
            self._expire_seen(state)
        state.add(("events_total", topic, event.type, outcome))
        state.offsets[topic] = message.offset
        self.store.put(message.partition, key, state)

    # -- dedupe memory ---------------------------------------------------------

    def _newest_day(self, state: ManagerState) -> int | None:
        if state.watermark == float("-inf"):
            return None
        return datetime.fromtimestamp(state.watermark, self.zone).date().toordinal()

    def _bucket_day(self, state: ManagerState, event: Event) -> int:
        """The event's local day, but never older than the dedupe horizon.

        Ids of events older than the horizon go into the oldest live bucket, so
        they are still recognised for a while instead of never.
        """
        day = event.occurred_at.astimezone(self.zone).date().toordinal()
        newest = self._newest_day(state)
        if newest is not None:
            day = max(day, newest - self.horizon_days)
        return day

    def _seen_elsewhere(self, state: ManagerState, event_id: str, origin: int) -> bool:
        for day in state.seen_days:
            bucket = self.store.get(seen_key(state.partition, state.manager_id, day))
            if isinstance(bucket, SeenIds):
                first = bucket.ids.get(event_id)
                if first is not None and first != origin:
                    return True
        return False

    def _remember(self, state: ManagerState, event: Event, origin: int) -> None:
        day = self._bucket_day(state, event)
        key = seen_key(state.partition, state.manager_id, day)
        bucket = self.store.get(key)
        if not isinstance(bucket, SeenIds):
            bucket = SeenIds()
        if event.event_id in bucket.ids:
            return
        bucket.ids[event.event_id] = origin
        self.store.put(state.partition, key, bucket)
        if day not in state.seen_days:
            state.seen_days.append(day)
            state.seen_days.sort()

    def _expire_seen(self, state: ManagerState) -> None:
        newest = self._newest_day(state)
        if newest is None:
            return
        cutoff = newest - self.horizon_days
        while state.seen_days and state.seen_days[0] < cutoff:
            day = state.seen_days.pop(0)
            self.store.delete(state.partition, seen_key(state.partition, state.manager_id, day))
