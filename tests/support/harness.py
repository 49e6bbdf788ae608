"""A broker-free processor with a changelog that can be restarted, and event builders."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from salespulse.settings import Pipeline, Regulation, Settings
from schemas.events import TOPIC_OF_TYPE
from streams.processor import Processor, RawMessage
from streams.state import ManagerState
from streams.store import StateStore, Write

_ids = itertools.count()

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DEALS, TASKS, CALLS = "crm.deals", "crm.tasks", "crm.calls"
TOPICS = {"deals": DEALS, "tasks": TASKS, "calls": CALLS}


REGULATED = Pipeline(
    regulations={"proposal": Regulation(task_type="proposal", within_hours=24)},
)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "timezone": "Europe/Berlin",
        "grace_period_seconds": 3600.0,
        "pipelines": {"default": REGULATED},
    }
    values.update(overrides)
    return Settings(**values)


class Harness:
    """A processor with a changelog that can be 'restarted', and cut short by a 'crash'."""

    def __init__(self, **overrides: Any) -> None:
        self.settings = settings(**overrides)
        # The changelog: every record written, in order, as a broker keeps them.
        self.changelog: list[tuple[int, bytes, bytes | None]] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.store = StateStore()
        self.processor = Processor(self.settings, self.store, clock=lambda: NOW)

    def message(self, topic: str, event: dict[str, Any] | bytes, partition: int = 0) -> RawMessage:
        offset = self.offsets.get((topic, partition), -1) + 1
        self.offsets[(topic, partition)] = offset
        if isinstance(event, bytes):
            return RawMessage(partition, offset, b"m-a", event)
        return RawMessage(
            partition, offset, event["manager_id"].encode(), json.dumps(event).encode()
        )

    def run(self, topic: str, messages: list[RawMessage]) -> list[Any]:
        dead = self.processor.process(topic, messages)
        self.processor.record_outputs(dead)  # the broker acknowledged them
        self.persist()
        return dead

    def persist(self, *, steps: int = 3) -> Write:
        """Write what changed; with *steps* < 3, only the first steps reach the broker
        (a crash cut the write short: restart next)."""
        write = self.store.drain()
        for step in (write.cores, write.items, write.closing)[:steps]:
            self.changelog.extend(step)
        if steps == 3:
            self.store.written(write)
        return write

    def restart(self) -> None:
        """A new worker restoring the changelog (bytes, decoded on first use)."""
        self.store = StateStore()
        for partition, key, value in self.changelog:
            self.store.restore(partition, key, value)
        self.processor = Processor(self.settings, self.store, clock=lambda: NOW)

    def live_records(self) -> dict[bytes, int]:
        """Records the changelog keeps (its latest value is not a tombstone), by kind."""
        latest: dict[bytes, bytes | None] = {}
        for _, key, value in self.changelog:
            latest[key] = value
        kinds: dict[bytes, int] = {}
        for key, value in latest.items():
            if value is not None:
                kinds[key[:1]] = kinds.get(key[:1], 0) + 1
        return kinds

    def send(self, *events: dict[str, Any]) -> list[Any]:
        """Publish contract events to their topics in order, one batch per run of a topic."""
        dead: list[Any] = []
        for event in events:
            topic = TOPICS[TOPIC_OF_TYPE[event["type"]]]
            dead.extend(self.run(topic, [self.message(topic, event)]))
        return dead

    def tick(self, at: datetime) -> int:
        changed = self.processor.tick({0}, at.timestamp())
        self.persist()
        return changed

    def manager(self, manager_id: str, partition: int = 0) -> ManagerState:
        record = self.store.manager(partition, manager_id)
        assert isinstance(record, ManagerState)
        return record

    def counter(self, manager_id: str, *cell: str) -> float:
        return sum(
            value
            for key, value in self.manager(manager_id).counters.items()
            if key[: len(cell)] == cell
        )


def deal_created(manager: str, deal: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{deal}-created",
        "type": "deal.created",
        "occurred_at": at.isoformat(),
        "manager_id": manager,
        "deal_id": deal,
        "stage": "lead",
        "amount": 100.0,
        **extra,
    }


def stage_changed(
    manager: str, deal: str, stage: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": f"{deal}-{stage}-{at.timestamp()}",
        "type": "deal.stage_changed",
        "occurred_at": at.isoformat(),
        "manager_id": manager,
        "deal_id": deal,
        "to_stage": stage,
        **extra,
    }


def call(manager: str, call_id: str, seconds: float, at: datetime) -> dict[str, Any]:
    return {
        "event_id": call_id,
        "type": "call.ended",
        "occurred_at": at.isoformat(),
        "manager_id": manager,
        "call_id": call_id,
        "direction": "outbound",
        "duration_seconds": seconds,
    }


def task_created(
    manager: str, task: str, task_type: str, at: datetime, due: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": f"{task}-created-{next(_ids)}",
        "type": "task.created",
        "occurred_at": at.isoformat(),
        "manager_id": manager,
        "task_id": task,
        "task_type": task_type,
        "due_at": due.isoformat(),
        **extra,
    }


def task_completed(manager: str, task: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{task}-completed-{next(_ids)}",
        "type": "task.completed",
        "occurred_at": at.isoformat(),
        "manager_id": manager,
        "task_id": task,
        **extra,
    }


def task_overdue(manager: str, task: str, at: datetime) -> dict[str, Any]:
    return {
        "event_id": f"{task}-overdue-{next(_ids)}",
        "type": "task.overdue",
        "occurred_at": at.isoformat(),
        "manager_id": manager,
        "task_id": task,
    }
