"""Turn a raw Kafka message into a validated event or a precise rejection.

Rejection reasons are short stable codes integrators can alert on; the
detail is for the human reading the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER, TOPIC_OF_TYPE, Event

RejectReason = Literal[
    "empty_message",
    "too_large",
    "invalid_encoding",
    "invalid_json",
    "not_an_object",
    "unknown_type",
    "schema_violation",
    "wrong_topic",
    "key_mismatch",
    "out_of_range",
    "unknown_pipeline",
    "unknown_stage",
    "manager_limit",
    "processing_error",
]

REJECT_REASONS: tuple[RejectReason, ...] = RejectReason.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: RejectReason
    detail: str
    event_type: str = ""  # the declared type when it is a known one, for bounded labels


def known_type(raw: bytes) -> str:
    """Best-effort declared type of a rejected message, bounded to known types."""
    for event_type in TOPIC_OF_TYPE:
        if f'"{event_type}"'.encode() in raw:
            return event_type
    return ""


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        location = [str(part) for part in error["loc"]]
        if location and location[0] in TOPIC_OF_TYPE:
            location = location[1:]
        field = ".".join(location)
        parts.append(f"{field}: {error['msg']}" if field else error["msg"])
    more = len(exc.errors()) - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _classify(exc: ValidationError, raw: bytes) -> Rejection:
    first = exc.errors()[0]
    kind = first["type"]
    if kind == "json_invalid":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            return Rejection("invalid_encoding", f"message is not UTF-8: {decode_error}")
        return Rejection("invalid_json", first["msg"])
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return Rejection("not_an_object", "the message must be one JSON object")
    if kind == "union_tag_invalid":
        return Rejection("unknown_type", first["msg"])
    if kind == "union_tag_not_found":
        return Rejection("schema_violation", "type: field required")
    return Rejection("schema_violation", _describe(exc), known_type(raw))


def parse_event(
    raw: bytes | None,
    key: bytes | None,
    topic_family: str,
    *,
    max_bytes: int,
    now: datetime,
    max_future_skew: timedelta,
) -> Event | Rejection:
    """Validate one message of a CRM topic of *topic_family* (deals/tasks/calls)."""
    if not raw:
        return Rejection("empty_message", "the message has no value")
    if len(raw) > max_bytes:
        return Rejection(
            "too_large", f"the message has {len(raw)} bytes, more than the limit of {max_bytes}"
        )
    try:
        event = EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        return _classify(exc, raw)
    if TOPIC_OF_TYPE[event.type] != topic_family:
        return Rejection(
            "wrong_topic",
            f"{event.type} belongs on the {TOPIC_OF_TYPE[event.type]} topic, "
            f"not the {topic_family} topic",
            event.type,
        )
    if key is None:
        return Rejection(
            "key_mismatch",
            f"the message has no key; it must be the manager_id {event.manager_id!r} "
            "so all of a manager's events share a partition",
            event.type,
        )
    if key != event.manager_id.encode():
        shown = key[:80].decode("utf-8", "replace")
        return Rejection(
            "key_mismatch",
            f"message key {shown!r} differs from manager_id {event.manager_id!r}; "
            "the key must be the manager_id so all of a manager's events share a partition",
            event.type,
        )
    try:
        too_far = event.occurred_at.astimezone(UTC) > now + max_future_skew
    except OverflowError:  # beyond year 9999 once converted to UTC
        too_far = True
    if too_far:
        return Rejection(
            "out_of_range",
            f"occurred_at {event.occurred_at.isoformat()} is further in the future "
            f"than the allowed clock skew of {max_future_skew}",
            event.type,
        )
    return event
