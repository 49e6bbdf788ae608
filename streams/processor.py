"""One batch of source messages in, state updated, rejections and reroutes out.

Every consumed message ends in exactly one outcome, counted in
``salespulse_events_total``: processed, duplicate, late, rejected, or
rerouted (it landed on another partition than its key maps to, and was sent
there: its copy has an outcome of its own where it lands). A message
delivered again after a crash (its offset already absorbed by the state) ends
in no new outcome at all, because its first delivery already has one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from salespulse.settings import Settings
from schemas.events import MAX_EVENT_BYTES, CallEnded, DealCreated, DealStageChanged, Event
from streams.aggregate import Aggregator
from streams.entities import CallIds, DealState, TaskState
from streams.intake import Rejection, known_type, parse_event
from streams.repository import Manager, Repository

log = logging.getLogger(__name__)


Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class RawMessage:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp: float | None = None  # the record's timestamp, epoch seconds


def raw_message(record: Any) -> RawMessage:
    """An aiokafka ``ConsumerRecord`` as the processor takes it."""
    timestamp = record.timestamp
    return RawMessage(
        record.partition,
        record.offset,
        record.key,
        record.value,
        tuple(record.headers) if record.headers else (),
        timestamp / 1000.0 if timestamp is not None else None,
    )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message, for the dead-letter topic."""

    topic: str
    message: RawMessage
    rejection: Rejection


@dataclass(frozen=True, slots=True)
class Reroute:
    """A message that landed on another partition than its key maps to, for *to_partition*."""

    topic: str
    message: RawMessage
    to_partition: int


# What a batch sends on before its messages' outcomes may be counted.
Output = DeadLetter | Reroute


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Processor:
    def __init__(
        self,
        settings: Settings,
        store: Repository,
        clock: Callable[[], datetime] = _utc_now,
        *,
        placement: Callable[[bytes], int] | None = None,
    ):
        """*placement* maps a key to the partition it belongs to (schemas.partitioning);
        given, a message on another partition is rerouted there instead of applied.
        Without it (offline replays, where partitions mean nothing) every message is
        applied where it is."""
        self.store = store
        self.placement = placement
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

    def process(self, topic: str, messages: Sequence[RawMessage]) -> list[Output]:
        """Apply *messages* of *topic* in offset order; returns what must be sent on
        (dead letters, reroutes) before their outcomes are counted (``record_outputs``)."""
        dead: list[Output] = []
        now = self.clock()
        family = self.family[topic]
        placement = self.placement
        for message in messages:
            # One that would be rejected for its size anyway is rejected where it is.
            if placement is not None and message.key is not None and message.value:
                home = placement(message.key)
                if home != message.partition and len(message.value) <= MAX_EVENT_BYTES:
                    self._reroute(topic, message, home, dead)
                    continue
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
        self.store.pack()
        return dead

    def tick(self, partitions: set[int], clock: float) -> int:
        """Settle deadlines *clock* has passed in caught-up *partitions*; counts changes."""
        changed = 0
        for state in self.store.managers_in(partitions):
            if state.restored:
                self.aggregator.index(state)
            if self.aggregator.advance(state, clock, clock):
                self.store.touch(state)
                changed += 1
        self.store.pack()
        return changed

    # -- outcomes --------------------------------------------------------------

    def _sent_before(self, topic: str, message: RawMessage) -> bool:
        """Whether *message* was sent on (dead-lettered, rerouted) and counted before a
        restart: the partition's record of those holds its offset."""
        state = self.store.rejected(message.partition, topic)
        return state is not None and message.offset <= state.offset

    def _reject(
        self, topic: str, message: RawMessage, rejection: Rejection, dead: list[Output]
    ) -> None:
        """Queue a dead letter; it is counted only once the broker has it."""
        if not self._sent_before(topic, message):
            dead.append(DeadLetter(topic, message, rejection))

    def _reroute(self, topic: str, message: RawMessage, home: int, dead: list[Output]) -> None:
        """Queue a message for the partition its key maps to; none of the state here may
        see it (a manager's state lives in one partition only)."""
        if not self._sent_before(topic, message):
            dead.append(Reroute(topic, message, home))

    def record_outputs(self, outputs: Sequence[Output]) -> None:
        """Count dead letters and reroutes the broker has acknowledged (in the order
        ``process`` returned them).

        Counting only after the acknowledgement means no state, whichever agent
        writes it to the changelog, can claim an outcome whose message might
        still be lost: a crash in between delivers the message again and it is
        sent on again (at least once, never zero times; a rerouted copy sent
        twice is a duplicate event id where it lands).
        """
        for output in outputs:
            message = output.message
            state = self.store.rejected(message.partition, output.topic)
            if state is None:
                state = self.store.new_rejected(message.partition, output.topic)
            if message.offset <= state.offset:
                continue
            state.offset = message.offset
            if isinstance(output, Reroute):
                event_type = known_type(message.value or b"") or "unknown"
                state.counters.add(("events_total", output.topic, event_type, "rerouted"))
            else:
                event_type = output.rejection.event_type or "invalid"
                state.counters.add(("events_total", output.topic, event_type, "rejected"))
                state.counters.add(("events_rejected_total", output.topic, output.rejection.reason))
            self.store.touch_rejected(message.partition, output.topic)

    def _admit(self, partition: int, manager_id: str) -> bool:
        """Whether a manager without state may get some: configured ones always."""
        if manager_id in self.configured_managers:
            return True
        tracked = self._unconfigured.get(partition)
        if tracked is None:  # first use since (re)assignment: count what the state holds
            tracked = set(self.store.manager_ids(partition)) - self.configured_managers
            self._unconfigured[partition] = tracked
        if len(tracked) >= self.max_unconfigured:
            return False
        tracked.add(manager_id)
        return True

    def _accept(self, topic: str, message: RawMessage, event: Event, dead: list[Output]) -> None:
        state = self.store.manager(message.partition, event.manager_id)
        if state is None:
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
            state = self.store.new_manager(message.partition, event.manager_id)
        elif state.restored:
            self.aggregator.index(state)
        if message.offset <= state.offsets.get(topic, -1):
            return  # delivered again after a restart: its effect is in the state already
        day = self._call_day(state, event) if isinstance(event, CallEnded) else 0
        if self._seen(state, event, day):
            outcome = "duplicate"
        else:
            outcome = "late" if self.aggregator.apply(state, event) else "processed"
            self._remember(state, event, day)
        state.add(("events_total", topic, event.type, outcome))
        state.offsets[topic] = message.offset
        self.store.touch(state)

    # -- dedupe memory ---------------------------------------------------------
    #
    # A deal's or task's own record keeps the ids of its events; calls have one
    # record of ids per manager and local day. They are written with the manager's
    # core, so the ids are exactly those of the events the state holds: an id seen
    # again in a message the state has not absorbed is a duplicate.

    def _call_day(self, state: Manager, event: Event) -> int:
        """The event's local day, but never older than the dedupe horizon.

        Ids of events older than the horizon go into the oldest live day, so
        they are still recognised for a while instead of never.
        """
        day = event.occurred_at.astimezone(self.zone).date().toordinal()
        if state.watermark != float("-inf"):
            newest = datetime.fromtimestamp(state.watermark, self.zone).date().toordinal()
            day = max(day, newest - self.horizon_days)
        return day

    @staticmethod
    def _item(state: Manager, event: Event, day: int) -> DealState | TaskState | CallIds | None:
        """The record that holds *event*'s id (a call's by its *day*), for its next change."""
        if isinstance(event, CallEnded):
            return state.calls.get(day)
        if isinstance(event, DealCreated | DealStageChanged):
            return state.deals.get(event.deal_id)
        return state.tasks.get(event.task_id)

    def _seen(self, state: Manager, event: Event, day: int) -> bool:
        item = self._item(state, event, day)
        return item is not None and event.event_id in item.ids

    def _remember(self, state: Manager, event: Event, day: int) -> None:
        item = self._item(state, event, day)
        if isinstance(item, CallIds):
            item.ids.add(event.event_id)
        elif item is not None:
            item.ids.append(event.event_id)
        elif isinstance(event, CallEnded):
            state.calls.put(day, CallIds(day, {event.event_id}))
        # A deal or task expired at once (closed before the horizon) keeps no ids.
