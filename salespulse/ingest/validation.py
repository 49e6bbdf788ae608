"""Turning candidate events into records to publish, with the worker's own checks.

Each event is serialized to exactly the bytes that will be published and run
through :func:`streams.intake.parse_event` (the worker's intake) with the key
the gateway will use, so anything the gateway accepts passes the worker's
intake too; with ``check_funnel`` the aggregator's pipeline and stage check
runs as well. Rejection reasons are the worker's dead-letter codes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from salespulse.ingest.models import EventResult, EventStatus
from salespulse.settings import Settings
from schemas.events import MAX_EVENT_BYTES, TOPIC_OF_TYPE
from streams.aggregate import Aggregator
from streams.intake import Rejection, parse_event


@dataclass(frozen=True, slots=True)
class Candidate:
    """One event to validate: a contract event as JSON data, or a verdict already reached.

    Adapters produce candidates from CRM payloads; a candidate with ``event`` None
    carries its own status (``ignored`` or ``rejected``) and reason.
    """

    index: int
    event: Any = None
    status: EventStatus = "accepted"
    reason: str | None = None
    detail: str | None = None
    event_id: str | None = None
    type: str | None = None
    ref: str | None = None

    @classmethod
    def ignored(cls, index: int, reason: str, detail: str, *, ref: str | None = None) -> Candidate:
        return cls(index, None, "ignored", reason, detail, ref=ref)

    @classmethod
    def rejected(
        cls,
        index: int,
        reason: str,
        detail: str,
        *,
        ref: str | None = None,
        event_id: str | None = None,
        type: str | None = None,
    ) -> Candidate:
        return cls(index, None, "rejected", reason, detail, event_id, type, ref)


@dataclass(frozen=True, slots=True)
class Record:
    """One event ready for the broker."""

    topic: str
    key: bytes
    value: bytes
    event_id: str
    type: str


@dataclass
class Outcome:
    records: list[Record] = field(default_factory=list)
    results: list[EventResult] = field(default_factory=list)

    def count(self, status: EventStatus) -> int:
        return sum(1 for result in self.results if result.status == status)


def encode(value: Any) -> bytes:
    """Compact JSON bytes; non-UTF-8-encodable text (lone surrogates) stays escaped."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _declared(value: Any, name: str) -> str | None:
    if isinstance(value, dict):
        found = value.get(name)
        if isinstance(found, str):
            return found
    return None


class Validator:
    """Validates candidates under one configuration."""

    def __init__(
        self,
        settings: Settings,
        *,
        check_funnel: bool,
        clock: Callable[[], datetime],
    ) -> None:
        self.topics = {
            "deals": settings.topic_deals,
            "tasks": settings.topic_tasks,
            "calls": settings.topic_calls,
        }
        self.max_future_skew = timedelta(seconds=settings.max_future_skew_seconds)
        self.aggregator = Aggregator(settings) if check_funnel else None
        self.clock = clock

    def validate(self, candidates: Sequence[Candidate]) -> Outcome:
        outcome = Outcome()
        now = self.clock()
        for candidate in candidates:
            if candidate.event is None:
                outcome.results.append(
                    EventResult(
                        index=candidate.index,
                        event_id=candidate.event_id,
                        status=candidate.status,
                        reason=candidate.reason,
                        detail=candidate.detail,
                        type=candidate.type,
                        ref=candidate.ref,
                    )
                )
                continue
            record_or_rejection = self._check(candidate.event, now)
            declared_type = _declared(candidate.event, "type")
            if isinstance(record_or_rejection, Rejection):
                event_id = _declared(candidate.event, "event_id")
                outcome.results.append(
                    EventResult(
                        index=candidate.index,
                        event_id=event_id if event_id and len(event_id) <= 128 else None,
                        status="rejected",
                        reason=record_or_rejection.reason,
                        detail=record_or_rejection.detail,
                        type=declared_type if declared_type in TOPIC_OF_TYPE else None,
                        ref=candidate.ref,
                    )
                )
                continue
            outcome.records.append(record_or_rejection)
            outcome.results.append(
                EventResult(
                    index=candidate.index,
                    event_id=record_or_rejection.event_id,
                    status="accepted",
                    type=record_or_rejection.type,
                    ref=candidate.ref,
                )
            )
        return outcome

    def _check(self, event: Any, now: datetime) -> Record | Rejection:
        raw = encode(event)
        declared_type = _declared(event, "type")
        family = TOPIC_OF_TYPE.get(declared_type or "", "deals")
        manager = _declared(event, "manager_id")
        key = manager.encode("utf-8", "replace") if manager is not None else None
        result = parse_event(
            raw,
            key,
            family,
            max_bytes=MAX_EVENT_BYTES,
            now=now,
            max_future_skew=self.max_future_skew,
        )
        if isinstance(result, Rejection):
            return result
        if self.aggregator is not None:
            rejection = self.aggregator.check(result)
            if rejection is not None:
                return rejection
        return Record(
            topic=self.topics[TOPIC_OF_TYPE[result.type]],
            key=result.manager_id.encode("utf-8"),
            value=raw,
            event_id=result.event_id,
            type=result.type,
        )
