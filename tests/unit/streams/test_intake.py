"""parse_event: every raw message becomes a validated event or a precise rejection.

One test per rejection reason reachable through parse_event, plus checks that
the detail is fit for the human reading the dead-letter topic.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import CallEnded, DealStageChanged, Event, TaskCreated
from streams.intake import REJECT_REASONS, Rejection, parse_event

MAX_BYTES = 64 * 1024  # the processor's limit
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SKEW = timedelta(hours=24)

CALL: dict[str, Any] = {
    "event_id": "evt-1",
    "type": "call.ended",
    "occurred_at": "2026-11-22T10:15:00+03:00",
    "manager_id": "m-017",
    "call_id": "C-1",
    "direction": "inbound",
    "duration_seconds": 95,
}
DEAL: dict[str, Any] = {
    "event_id": "evt-2",
    "type": "deal.stage_changed",
    "occurred_at": "2026-11-22T10:15:00+03:00",
    "manager_id": "m-017",
    "deal_id": "D-88412",
    "pipeline": "default",
    "from_stage": "qualification",
    "to_stage": "proposal",
    "amount": 12500,
}
TASK: dict[str, Any] = {
    "event_id": "evt-3",
    "type": "task.created",
    "occurred_at": "2026-11-22T10:15:00+03:00",
    "manager_id": "m-017",
    "task_id": "T-1",
    "task_type": "call",
    "due_at": "2026-11-23T10:00:00+03:00",
}
FAMILY = {"call.ended": "calls", "deal.stage_changed": "deals", "task.created": "tasks"}


def encode(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def parse(
    raw: bytes | None,
    key: bytes | None = b"m-017",
    family: str = "calls",
    *,
    max_bytes: int = MAX_BYTES,
    now: datetime = NOW,
) -> Event | Rejection:
    return parse_event(raw, key, family, max_bytes=max_bytes, now=now, max_future_skew=SKEW)


def rejected(
    raw: bytes | None,
    reason: str,
    key: bytes | None = b"m-017",
    family: str = "calls",
    *,
    max_bytes: int = MAX_BYTES,
) -> Rejection:
    """Parse *raw*, assert it is rejected for *reason*, and that the detail is readable."""
    result = parse(raw, key, family, max_bytes=max_bytes)
    assert isinstance(result, Rejection), f"expected a {reason} rejection, got {result!r}"
    assert result.reason == reason, result
    assert result.reason in REJECT_REASONS
    assert_readable(result.detail)
    return result


def assert_readable(detail: str) -> None:
    assert detail.strip(), "the detail must say something"
    assert "\n" not in detail, "the detail goes into a Kafka header: one line"
    assert len(detail) < 1000
    assert "errors.pydantic.dev" not in detail
    assert "ValidationError" not in detail
    assert "Traceback" not in detail


def call(**changes: Any) -> bytes:
    return encode({**CALL, **changes})


def call_without(field: str) -> bytes:
    payload = dict(CALL)
    del payload[field]
    return encode(payload)


# -- accepted ---------------------------------------------------------------------


@pytest.mark.parametrize("payload", [CALL, DEAL, TASK], ids=lambda p: p["type"])
def test_a_valid_event_passes(payload: dict[str, Any]) -> None:
    result = parse(encode(payload), family=FAMILY[payload["type"]])

    assert not isinstance(result, Rejection), result
    assert type(result) in (CallEnded, DealStageChanged, TaskCreated)
    assert result.type == payload["type"]
    assert result.event_id == payload["event_id"]
    assert result.manager_id == "m-017"


def test_a_message_without_key_is_rejected_because_it_could_land_anywhere() -> None:
    result = parse(encode(CALL), key=None)

    assert isinstance(result, Rejection)
    assert result.reason == "key_mismatch"
    assert "no key" in result.detail


def test_a_non_ascii_manager_id_matches_its_utf8_key() -> None:
    result = parse(call(manager_id="Zoë-17"), key="Zoë-17".encode())

    assert isinstance(result, CallEnded)
    assert result.manager_id == "Zoë-17"


def test_a_message_of_exactly_the_size_limit_passes() -> None:
    body = encode(CALL)
    padded = body + b" " * (MAX_BYTES - len(body))  # trailing whitespace is valid JSON
    assert len(padded) == MAX_BYTES

    assert isinstance(parse(padded), CallEnded)


def test_an_event_at_the_edge_of_the_allowed_skew_passes() -> None:
    edge = (NOW + SKEW).isoformat()

    assert isinstance(parse(call(occurred_at=edge)), CallEnded)


def test_unknown_fields_pass() -> None:
    result = parse(call(recording={"url": "https://example.invalid", "codec": "opus"}))

    assert isinstance(result, CallEnded)


# -- empty_message, too_large -----------------------------------------------------


@pytest.mark.parametrize("raw", [b"", None], ids=["empty", "null"])
def test_empty_message(raw: bytes | None) -> None:
    rejection = rejected(raw, "empty_message")

    assert rejection.event_type == ""


def test_too_large() -> None:
    payload = {**CALL, "padding": "x" * (2 * 1024 * 1024)}

    rejection = rejected(encode(payload), "too_large")

    assert str(MAX_BYTES) in rejection.detail
    assert str(len(encode(payload))) in rejection.detail


def test_one_byte_over_the_limit_is_too_large() -> None:
    body = encode(CALL)
    padded = body + b" " * (MAX_BYTES - len(body) + 1)

    rejected(padded, "too_large")


# -- invalid_encoding, invalid_json -----------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id": "\xff\xfe", "type": "call.ended"}',
        "ä".encode("latin-1") + b'{"type": "call.ended"}',
        json.dumps(CALL).encode("utf-16"),
        b"\xc3\x28",  # an invalid two-byte sequence
    ],
    ids=["bad-bytes-in-string", "latin-1", "utf-16", "truncated-sequence"],
)
def test_invalid_encoding(raw: bytes) -> None:
    rejection = rejected(raw, "invalid_encoding")

    assert "UTF-8" in rejection.detail


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"event_id": "e1",}',
        b'{"event_id": "e1"',
        b"   ",
        b"{'event_id': 'e1'}",
        b'{"event_id": "e1"} {"event_id": "e2"}',
    ],
    ids=["garbage", "trailing-comma", "truncated", "whitespace", "single-quotes", "two-objects"],
)
def test_invalid_json(raw: bytes) -> None:
    rejection = rejected(raw, "invalid_json")

    assert "JSON" in rejection.detail
    assert "line 1" in rejection.detail


def test_deeply_nested_json_is_rejected_without_crashing() -> None:
    depth = 20_000
    raw = b'{"type": "call.ended", "crm": ' + b"[" * depth + b"]" * depth + b"}"
    assert len(raw) < MAX_BYTES

    # The JSON parser's recursion limit turns it into invalid_json.
    rejection = rejected(raw, "invalid_json")

    assert "recursion" in rejection.detail


def test_deeply_nested_json_value_of_a_field_is_rejected() -> None:
    depth = 300
    nested = b'{"a": ' * depth + b"1" + b"}" * depth
    raw = encode(CALL)[:-1] + b', "source": ' + nested + b"}"

    result = parse(raw)

    assert isinstance(result, Rejection)
    assert result.reason == "invalid_json"


# -- not_an_object ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"[]", encode([CALL]), b'"call.ended"', b"42", b"true", b"null"],
    ids=["empty-array", "array-of-event", "string", "number", "bool", "null"],
)
def test_not_an_object(raw: bytes) -> None:
    rejection = rejected(raw, "not_an_object")

    assert "object" in rejection.detail


# -- unknown_type -----------------------------------------------------------------


@pytest.mark.parametrize("declared", ["deal.deleted", "CALL.ENDED", ""])
def test_unknown_type(declared: str) -> None:
    rejection = rejected(call(type=declared), "unknown_type")

    assert repr(declared) in rejection.detail
    assert "call.ended" in rejection.detail  # the detail lists what is known
    assert rejection.event_type == ""


# -- schema_violation -------------------------------------------------------------


def test_missing_type_is_a_schema_violation() -> None:
    rejection = rejected(call_without("type"), "schema_violation")

    assert rejection.detail.startswith("type:")


@pytest.mark.parametrize("field", ["call_id", "occurred_at", "manager_id", "duration_seconds"])
def test_missing_field(field: str) -> None:
    rejection = rejected(call_without(field), "schema_violation")

    assert rejection.detail.startswith(f"{field}:")
    assert "required" in rejection.detail.lower()
    assert rejection.event_type == "call.ended"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_seconds", "95"),
        ("manager_id", 17),
        ("answered", "yes"),
        ("direction", "sideways"),
        ("occurred_at", 1763795700),
    ],
)
def test_wrong_type(field: str, value: object) -> None:
    rejection = rejected(call(**{field: value}), "schema_violation")

    assert rejection.detail.startswith(f"{field}:")


def test_naive_timestamp() -> None:
    rejection = rejected(call(occurred_at="2026-11-22T10:15:00"), "schema_violation")

    assert rejection.detail.startswith("occurred_at:")
    assert "timezone" in rejection.detail


def test_negative_duration() -> None:
    rejection = rejected(call(duration_seconds=-1), "schema_violation")

    assert rejection.detail.startswith("duration_seconds:")
    assert "greater than or equal to 0" in rejection.detail


def test_negative_amount() -> None:
    raw = encode({**DEAL, "amount": -12500})

    rejection = rejected(raw, "schema_violation", family="deals")

    assert rejection.detail.startswith("amount:")
    assert rejection.event_type == "deal.stage_changed"


@pytest.mark.parametrize("field", ["event_id", "manager_id", "call_id"])
def test_control_characters_in_id(field: str) -> None:
    rejection = rejected(call(**{field: "m-0\x0017"}), "schema_violation")

    assert rejection.detail.startswith(f"{field}:")


def test_occurred_at_before_2000_is_a_schema_violation() -> None:
    rejection = rejected(call(occurred_at="1999-12-31T23:59:59Z"), "schema_violation")

    assert "occurred_at" in rejection.detail
    assert "2000" in rejection.detail


def test_several_violations_are_all_named_up_to_five() -> None:
    raw = encode({"type": "task.created", "source": 5})  # 6 fields missing, 1 wrong

    rejection = rejected(raw, "schema_violation", family="tasks")

    for field in ("event_id", "occurred_at", "manager_id", "source"):
        assert f"{field}:" in rejection.detail
    assert rejection.detail.endswith("and 2 more")


# -- wrong_topic, key_mismatch, out_of_range --------------------------------------


@pytest.mark.parametrize(
    ("payload", "family"),
    [(DEAL, "calls"), (DEAL, "tasks"), (CALL, "deals"), (TASK, "calls")],
    ids=["deal-on-calls", "deal-on-tasks", "call-on-deals", "task-on-calls"],
)
def test_wrong_topic(payload: dict[str, Any], family: str) -> None:
    rejection = rejected(encode(payload), "wrong_topic", family=family)

    assert payload["type"] in rejection.detail
    assert f"{FAMILY[payload['type']]} topic" in rejection.detail
    assert f"not the {family} topic" in rejection.detail
    assert rejection.event_type == payload["type"]


@pytest.mark.parametrize("key", [b"m-018", b"", b"M-017", b"m-017 "])
def test_key_mismatch(key: bytes) -> None:
    rejection = rejected(encode(CALL), "key_mismatch", key=key)

    assert "manager_id" in rejection.detail
    assert "'m-017'" in rejection.detail
    assert rejection.event_type == "call.ended"


def test_key_mismatch_detail_stays_short_for_a_huge_binary_key() -> None:
    rejection = rejected(encode(CALL), "key_mismatch", key=b"\xff" * 10_000)

    assert len(rejection.detail) < 500


@pytest.mark.parametrize(
    "moment",
    [
        (NOW + SKEW + timedelta(seconds=1)).isoformat(),
        "2030-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59+00:00",
    ],
)
def test_far_future_is_out_of_range(moment: str) -> None:
    rejection = rejected(call(occurred_at=moment), "out_of_range")

    assert "occurred_at" in rejection.detail
    assert "future" in rejection.detail
    assert rejection.event_type == "call.ended"


def test_future_skew_is_measured_in_utc() -> None:
    # The limit is NOW + SKEW = 2026-11-23T12:00Z, whatever the wall-clock time looks like.
    # 13:00 at +02:00 is 11:00 UTC: inside the limit although 13:00 reads later than 12:00.
    assert isinstance(parse(call(occurred_at="2026-11-23T13:00:00+02:00")), CallEnded)
    # 11:00 at -02:00 is 13:00 UTC: beyond it although 11:00 reads earlier than 12:00.
    rejected(call(occurred_at="2026-11-23T11:00:00-02:00"), "out_of_range")


def test_far_future_beyond_year_9999_in_utc_is_out_of_range() -> None:
    rejected(call(occurred_at="9999-12-31T23:59:59-01:00"), "out_of_range")


# -- order of checks --------------------------------------------------------------


def test_size_is_checked_before_parsing() -> None:
    rejected(b"\xff" * (MAX_BYTES + 1), "too_large")


def test_topic_is_checked_before_the_key() -> None:
    rejected(encode(DEAL), "wrong_topic", key=b"someone-else", family="calls")


def test_rejections_are_immutable() -> None:
    rejection = rejected(b"", "empty_message")

    with pytest.raises(AttributeError):
        rejection.reason = "invalid_json"  # type: ignore[misc]
