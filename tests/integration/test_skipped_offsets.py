"""Offsets committed without being processed are read back, not lost.

A Kafka consumer can commit an offset whose message its application never
saw (Faust has done so around rebalances and cancelled batches; an
operator's offset reset does it on purpose). The worker compares every batch
with the progress kept in its own state and reads the missing messages back
from the broker. Here the group's offsets are moved past unprocessed
messages while the worker is stopped: once into the middle of what waits
(the next batch shows the gap), once to the very end (nothing more arrives,
the periodic check finds it).
"""

from __future__ import annotations

import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from salespulse.broker import EmbeddedBroker
from tests.support.kafka import as_messages, commit_offsets, publish_acked
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, scrape, total

pytestmark = pytest.mark.integration

MANAGERS = ("m-1", "m-2", "m-3")


def calls(prefix: str, per_manager: int) -> list[tuple[str, dict[str, Any]]]:
    at = datetime.now(UTC) - timedelta(hours=1)
    return [
        (
            "crm.calls",
            {
                "event_id": f"{prefix}-{manager}-{n}",
                "type": "call.ended",
                "occurred_at": (at + timedelta(seconds=n)).isoformat(),
                "manager_id": manager,
                "call_id": f"{prefix}-{manager}-{n}",
                "direction": "outbound",
                "duration_seconds": 60 + n,
            },
        )
        for n in range(per_manager)
        for manager in MANAGERS
    ]


def offsets_by_partition(acks: list[tuple[str, int, int]]) -> dict[tuple[str, int], list[int]]:
    found: dict[tuple[str, int], list[int]] = defaultdict(list)
    for topic, partition, offset in acks:
        found[(topic, partition)].append(offset)
    return {key: sorted(offsets) for key, offsets in found.items()}


def wait_for_calls(worker: WorkerProcess, expected: int) -> Samples:
    def probe() -> Samples | None:
        samples = scrape(worker.metrics_port)
        return samples if total(samples, "salespulse_calls_total") >= expected else None

    return wait_for(probe, timeout=90, what=f"{expected} calls on /metrics")


def assert_every_call_once(samples: Samples, per_manager: int) -> None:
    for manager in MANAGERS:
        assert total(samples, "salespulse_calls_total", manager=manager) == per_manager
    assert total(samples, "salespulse_events_total", outcome="processed") == 3 * per_manager
    assert total(samples, "salespulse_events_total") == 3 * per_manager


def test_offsets_committed_past_unprocessed_messages_are_read_back(
    broker: EmbeddedBroker, worker: WorkerProcess
) -> None:
    worker.start().wait_ready()
    publish_acked(broker.bootstrap, as_messages(calls("a", 10)))
    wait_for_calls(worker, 30)
    assert worker.stop(signal.SIGTERM) == 0, worker.tail()

    # Into the middle: the first half of what waits in each partition is skipped.
    waiting = offsets_by_partition(publish_acked(broker.bootstrap, as_messages(calls("b", 20))))
    middle = {key: offsets[len(offsets) // 2] for key, offsets in waiting.items()}
    commit_offsets(broker.bootstrap, worker.app_id, middle)
    skipped = sum(len(offsets) // 2 for offsets in waiting.values())
    assert skipped > 0
    worker.start().wait_ready()
    samples = wait_for_calls(worker, 90)
    assert_every_call_once(samples, 30)
    # More only if Faust itself skipped a batch (fetched before the group settled, handed
    # over after): then that batch is read back too, which is what the check is for.
    assert total(samples, "salespulse_messages_read_back_total") >= skipped
    assert worker.stop(signal.SIGTERM) == 0, worker.tail()

    # To the very end: nothing more arrives to show the gap.
    waiting = offsets_by_partition(publish_acked(broker.bootstrap, as_messages(calls("c", 10))))
    commit_offsets(
        broker.bootstrap, worker.app_id, {key: offsets[-1] + 1 for key, offsets in waiting.items()}
    )
    worker.start().wait_ready()
    samples = wait_for_calls(worker, 120)
    assert_every_call_once(samples, 40)
    assert total(samples, "salespulse_messages_read_back_total") >= 30
