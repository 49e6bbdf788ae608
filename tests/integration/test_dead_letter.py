"""Bad input on the real broker: dead-lettered with its reason, counted, worker unharmed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from salespulse.broker import EmbeddedBroker
from tests.support.kafka import publish_events, publish_raw, read_topic
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, scrape, total

pytestmark = pytest.mark.integration


def test_rejected_messages_reach_the_dead_letter_topic_with_reason_and_origin(
    broker: EmbeddedBroker, worker: WorkerProcess
) -> None:
    now = datetime.now(UTC).isoformat()
    good = {
        "event_id": "ok-1",
        "type": "call.ended",
        "occurred_at": now,
        "manager_id": "m-1",
        "call_id": "c-1",
        "direction": "inbound",
        "duration_seconds": 42,
    }
    bad: list[tuple[bytes, str]] = [
        (b"{oops", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_encoding"),
        (b"[1, 2]", "not_an_object"),
        (json.dumps({**good, "event_id": "x", "type": "call.started"}).encode(), "unknown_type"),
        (
            json.dumps({**good, "event_id": "y", "occurred_at": "2026-11-22T10:00:00"}).encode(),
            "schema_violation",
        ),
        (
            json.dumps({**good, "event_id": "z", "duration_seconds": -5}).encode(),
            "schema_violation",
        ),
    ]
    worker.start().wait_ready()
    publish_raw(broker.bootstrap, [("crm.calls", b"m-1", raw) for raw, _ in bad])
    publish_events(broker.bootstrap, [("crm.calls", good)])

    def settled() -> Samples | None:
        samples = scrape(worker.metrics_port)
        return samples if total(samples, "salespulse_events_total") >= len(bad) + 1 else None

    samples = wait_for(settled, timeout=60, what="all messages accounted for")
    assert total(samples, "salespulse_events_total", outcome="rejected") == len(bad)
    assert total(samples, "salespulse_events_total", outcome="processed") == 1
    assert total(samples, "salespulse_calls_total", manager="m-1") == 1
    for reason in {reason for _, reason in bad}:
        expected = sum(1 for _, r in bad if r == reason)
        assert total(samples, "salespulse_events_rejected_total", reason=reason) == expected

    letters = read_topic(broker.bootstrap, "crm.dead-letter", len(bad))
    assert len(letters) == len(bad)
    by_value = {letter.value: dict(letter.headers) for letter in letters}
    for raw, reason in bad:
        headers = by_value[raw]  # the message itself, unchanged
        assert headers["error.reason"].decode() == reason
        assert headers["error.detail"]
        assert headers["origin.topic"] == b"crm.calls"
        assert int(headers["origin.partition"]) >= 0
        assert int(headers["origin.offset"]) >= 0
    assert worker.process is not None
    assert worker.process.poll() is None
