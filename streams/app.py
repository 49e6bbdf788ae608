"""The Faust application: one agent per CRM topic, one changelog-backed state table.

Agents take events in batches: the consumer passes each partition's fetched
records on as one message (streams.batching), so Faust's per-event cost is
paid once per batch. A batch is decoded, validated and applied to
in-memory records; rejected messages are dead-lettered and acknowledged by
the broker; touched records are written to the changelog once per
``changelog_interval_seconds`` (see streams.pipeline and streams.changelog).
Records remember the offsets they absorbed, so state that runs ahead of
committed offsets is never applied twice; and the state's own progress per
source partition catches committed offsets that run ahead of the state (a
crash before a write, or Faust committing a message it never handed to the
agent), whose messages are read back from the broker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import TP

from salespulse.kafka_security import faust_credentials
from salespulse.settings import Settings
from schemas.partitioning import Placement
from streams import faust_compat, tablestore
from streams.batching import BatchingApp, BatchMessage
from streams.changelog import ChangelogWriter
from streams.gaps import GapReader
from streams.heap import release_free_memory
from streams.pipeline import BatchPipeline
from streams.processor import Processor, RawMessage, raw_message
from streams.state import Record, use_engine
from streams.store import StateStore

log = logging.getLogger(__name__)

STATE_TABLE = "state"
# Batches an agent may have waiting before its partitions are paused (of up to
# batch_max_events each); Faust's default of 4096 would buffer a whole backlog.
STREAM_BUFFER_BATCHES = 8
# Bytes a produce batch of the changelog may hold (aiokafka's default is 16 KiB).
CHANGELOG_BATCH_BYTES = 256 * 1024
# Changelog batches restored together.
RECOVERY_BUFFER_BATCHES = 16
# How often memory freed by batches and writes is given back (streams.heap).
TRIM_INTERVAL_SECONDS = 10.0


def changelog_topic_name(settings: Settings) -> str:
    return f"{settings.app_id}-{STATE_TABLE}-changelog"


@dataclass
class Runtime:
    """What the metrics endpoint needs to see of a running worker."""

    app: faust.App
    settings: Settings
    table: Any
    store: StateStore
    changelog: ChangelogWriter
    pipeline: BatchPipeline
    reader: GapReader
    batches: int = field(default=0)
    started_at: float = field(default_factory=time.time)
    ready_at: float | None = None
    # (topic, partition) -> messages not yet consumed, for actively owned partitions
    lag: dict[tuple[str, int], int] = field(default_factory=dict)
    # (topic, partition) -> the consumer's next offset to fetch
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    # (topic, partition) -> (applied offset, consumer position) at the last check
    _behind: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)

    def active_partitions(self) -> set[int]:
        actives: set[TP] = self.app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == self.settings.topic_deals}

    def ready(self) -> bool:
        tables: Any = self.app.tables  # the recovery service is not on the public interface
        recovery = tables.recovery
        ready = bool(
            recovery.completed.is_set() and not self.app.in_recovery and not self.app.rebalancing
        )
        if ready and self.ready_at is None:
            self.ready_at = time.time()
        return ready

    async def refresh_lag(self) -> None:
        """Messages between each owned partition's consume position and its end."""
        consumer: Any = self.app.consumer
        lag: dict[tuple[str, int], int] = {}
        positions: dict[tuple[str, int], int] = {}
        for partition in self.active_partitions():
            for topic in self.settings.source_topics:
                tp = TP(topic, partition)
                end = consumer.highwater(tp)
                position = await consumer.position(tp)
                if position is not None:
                    positions[(topic, partition)] = position
                if end is not None and position is not None:
                    lag[(topic, partition)] = max(0, end - position)
        self.lag = lag
        self.positions = positions

    def skipped_tails(self) -> dict[str, dict[int, int]]:
        """topic -> {partition: consumer position} where the consumer has gone past offsets
        the state never got, has nothing left to fetch, and neither has moved since the
        last check.

        A skipped message in mid-stream shows as a gap in the next batch; one at
        the end of what was sent would wait for the next message without this.
        A batch merely still on its way to the agent is no harm: reading back is
        idempotent, and the batch's messages are dropped as applied when it comes.
        """
        behind: dict[tuple[str, int], tuple[int, int]] = {}
        for (topic, partition), position in self.positions.items():
            applied = self.pipeline.progress.applied(topic, partition)
            if self.lag.get((topic, partition)) == 0 and position > applied + 1:
                behind[(topic, partition)] = (applied, position)
        steady = {
            source: position
            for source, (applied, position) in behind.items()
            if self._behind.get(source) == (applied, position)
        }
        self._behind = behind
        tails: dict[str, dict[int, int]] = {}
        for (topic, partition), position in steady.items():
            tails.setdefault(topic, {})[partition] = position
        return tails

    def caught_up_partitions(self) -> set[int]:
        """Active partitions whose every source topic is consumed up to its end.

        Only there may wall-clock time stand in for event time: while history is
        still being replayed, a task's completion may be just a few messages away.
        """
        return {
            partition
            for partition in self.active_partitions()
            if all(self.lag.get((topic, partition)) == 0 for topic in self.settings.source_topics)
        }

    def changelog_records_written(self) -> int:
        return self.changelog.records_written

    def messages_read_back(self) -> dict[str, int]:
        """Per source topic, zeros included, so the counter exists before anything happens."""
        read_back = self.pipeline.read_back
        return {topic: read_back.get(topic, 0) for topic in self.settings.source_topics}

    def records(self) -> list[Record]:
        """State of the actively owned partitions; nothing while state is being restored."""
        if self.app.in_recovery:
            return []
        return list(self.store.records(self.active_partitions()))


def build_app(settings: Settings) -> Runtime:
    assert settings.broker, "the broker is resolved before the app is built"
    use_engine(settings.state_engine)
    app = BatchingApp(
        settings.app_id,
        batched_topics=[*settings.source_topics, changelog_topic_name(settings)],
        fetch_max_wait_ms=round(settings.batch_max_seconds * 1000),
        broker=settings.broker,
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        producer_acks=-1,
        broker_credentials=faust_credentials(settings),
        table_cleanup_interval=3600.0,
        broker_max_poll_records=settings.batch_max_events,
        # Changelog writes build their produce batches themselves (streams.changelog).
        producer_max_batch_size=CHANGELOG_BATCH_BYTES,
        # Each item of an agent's buffer is a whole batch (streams.batching).
        stream_buffer_maxsize=STREAM_BUFFER_BATCHES,
    )
    table = app.Table(
        STATE_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        store=f"{tablestore.SCHEME}://{STATE_TABLE}",  # an empty URL counts as none
        # Each changelog event is a whole fetched batch (up to batch_max_events records).
        # Not 1: Faust then keeps consuming active partitions' changelogs after recovery.
        recovery_buffer_size=RECOVERY_BUFFER_BATCHES,
        standby_buffer_size=RECOVERY_BUFFER_BATCHES,
        help="salespulse state: managers, dedupe memory, rejections",
    )

    table_store: Any = table.data  # a tablestore.BatchStore (the table's store URL says so)
    store: StateStore = table_store.state_store
    changelog = ChangelogWriter(
        store,
        topic=lambda: table.changelog_topic.get_topic_name(),
        send=app.producer.send,
        batches=lambda: faust_compat.running_producer(app.producer),
    )
    # The source topics have exactly settings.partitions partitions (salespulse.topics).
    processor = Processor(settings, store, placement=Placement(settings.partitions))
    reader = GapReader(settings)
    runtime: Runtime

    pipeline = BatchPipeline(
        processor,
        changelog,
        reader,
        app.producer.send,
        topics=settings.source_topics,
        dead_letter_topic=settings.topic_dead_letter,
        owned=lambda partition: partition in runtime.active_partitions(),
        write_interval=settings.changelog_interval_seconds,
    )
    runtime = Runtime(
        app=app,
        settings=settings,
        table=table,
        store=store,
        changelog=changelog,
        pipeline=pipeline,
        reader=reader,
    )

    for topic_name in settings.source_topics:
        _register_agent(app, runtime, topic_name)

    async def settle_deadlines() -> None:
        """Notice overdue tasks and missed regulations of managers who have gone quiet,
        and source messages the consumer went past without handing them over."""
        if not runtime.ready() or app.should_stop:
            return  # while stopping, the producer may already be closed
        async with _quiet_when_stopping(app, "the deadline check"):
            await runtime.refresh_lag()
            for topic, ends in runtime.skipped_tails().items():
                await pipeline.absorb(topic, [], ends)
            partitions = runtime.caught_up_partitions()
            if partitions and processor.tick(partitions, time.time()):
                await changelog.write()

    app.timer(settings.overdue_check_interval_seconds, name="salespulse.deadlines")(
        settle_deadlines
    )

    async def write_changelog() -> None:
        """Write what batches touched since the last write (they write when it is due)."""
        if app.should_stop:
            return
        async with _quiet_when_stopping(app, "the changelog write"):
            await pipeline.flush()

    if settings.changelog_interval_seconds > 0:
        app.timer(settings.changelog_interval_seconds, name="salespulse.changelog")(write_changelog)

    async def give_back_memory() -> None:
        store.rest()
        release_free_memory()

    app.timer(TRIM_INTERVAL_SECONDS, name="salespulse.trim")(give_back_memory)

    async def write_before_handover(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Write everything before partitions go to another worker or the process ends.

        After a revocation, another worker restores these partitions from the
        changelog; a write from here later could overwrite its newer records.
        """
        await pipeline.flush()

    app.on_partitions_revoked.connect(write_before_handover)
    app.on_before_shutdown.connect(write_before_handover)
    return runtime


@asynccontextmanager
async def _quiet_when_stopping(app: faust.App, what: str) -> AsyncIterator[None]:
    """A timer caught by a shutdown must not crash the worker (exit code 1).

    The producer closes while the timer may be halfway through a write. Nothing
    is lost: the shutdown writes everything itself, wall-clock deadlines are
    settled again after a restart, and events are read back from the progress.
    """
    try:
        yield
    except (ProducerSendError, KafkaError):
        if not app.should_stop:
            raise
        log.info("%s was cut short by the shutdown", what)


def _register_agent(app: faust.App, runtime: Runtime, name: str) -> None:
    settings = runtime.settings
    topic = app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )
    pipeline = runtime.pipeline

    async def consume(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            if isinstance(message, BatchMessage):
                batch = [raw_message(record) for record in message.records]
            else:  # a source topic is always batched (streams.batching); Faust's own message
                batch = [
                    RawMessage(
                        message.partition,
                        message.offset,
                        message.key,
                        message.value,
                        tuple(dict(message.headers or ()).items()),
                        message.timestamp,
                    )
                ]
            await pipeline.absorb(name, batch)
            runtime.batches += 1

    app.agent(topic, name=f"salespulse.consume.{name}")(consume)
