"""The event contract (CONTRACT.md, "Events in") as enforced by schemas/events.py.

Events are validated the way the processor does it, from JSON bytes, so the
strict-mode rules checked here are the ones upstream systems meet in production.
The drift tests hold the committed JSON Schemas in schemas/json/ to the models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import (
    EVENT_ADAPTER,
    EVENT_MODELS,
    MAX_EVENT_BYTES,
    MAX_TASK_LINKS,
    TOPIC_OF_TYPE,
    CallEnded,
    DealCreated,
    DealStageChanged,
    Event,
    TaskCompleted,
    TaskCreated,
    TaskOverdue,
)
from schemas.export import SCHEMA_DIR, export_schemas, render_schemas

Payload = dict[str, Any]

CONTRACT_TYPES = {
    "deal.created": "deals",
    "deal.stage_changed": "deals",
    "task.created": "tasks",
    "task.completed": "tasks",
    "task.overdue": "tasks",
    "call.ended": "calls",
}

# The example of CONTRACT.md, verbatim.
CONTRACT_EXAMPLE = """
{"event_id": "b6a1…", "type": "deal.stage_changed", "occurred_at": "2026-11-22T10:15:00+03:00",
 "manager_id": "m-017", "deal_id": "D-88412", "pipeline": "default",
 "from_stage": "qualification", "to_stage": "proposal", "amount": 12500}
"""

COMMON: Payload = {
    "event_id": "evt-0001",
    "occurred_at": "2026-11-22T10:15:00+03:00",
    "manager_id": "m-017",
    "source": "amocrm",
}

VALID: dict[str, Payload] = {
    "deal.created": {
        **COMMON,
        "type": "deal.created",
        "deal_id": "D-1",
        "pipeline": "default",
        "stage": "lead",
        "amount": 1200.5,
        "product": "crm-pro",
        "channel": "web",
        "segment": "smb",
    },
    "deal.stage_changed": {
        **COMMON,
        "type": "deal.stage_changed",
        "deal_id": "D-1",
        "pipeline": "default",
        "from_stage": "lead",
        "to_stage": "qualified",
        "amount": 1500,
    },
    "task.created": {
        **COMMON,
        "type": "task.created",
        "task_id": "T-1",
        "task_type": "call",
        "due_at": "2026-11-24T18:00:00+03:00",
        "deal_id": "D-1",
        "stage": "qualified",
    },
    "task.completed": {**COMMON, "type": "task.completed", "task_id": "T-1", "deal_id": "D-1"},
    "task.overdue": {**COMMON, "type": "task.overdue", "task_id": "T-1"},
    "call.ended": {
        **COMMON,
        "type": "call.ended",
        "call_id": "C-1",
        "direction": "outbound",
        "duration_seconds": 312,
        "answered": True,
        "deal_id": "D-1",
    },
}

# Only what the contract requires, per type.
MINIMAL: dict[str, Payload] = {
    "deal.created": {"deal_id": "D-1", "stage": "lead"},
    "deal.stage_changed": {"deal_id": "D-1", "to_stage": "won"},
    "task.created": {"task_id": "T-1", "task_type": "meeting", "due_at": "2026-11-24T09:00:00Z"},
    "task.completed": {"task_id": "T-1"},
    "task.overdue": {"task_id": "T-1"},
    "call.ended": {"call_id": "C-1", "direction": "inbound", "duration_seconds": 0},
}

MODEL_OF_TYPE: dict[str, type[Any]] = {
    "deal.created": DealCreated,
    "deal.stage_changed": DealStageChanged,
    "task.created": TaskCreated,
    "task.completed": TaskCompleted,
    "task.overdue": TaskOverdue,
    "call.ended": CallEnded,
}


def validate(payload: Payload) -> Event:
    """Validate like the processor does: from JSON bytes."""
    return EVENT_ADAPTER.validate_json(json.dumps(payload).encode())


def rejection(payload: Payload) -> list[tuple[tuple[str | int, ...], str, str]]:
    """(location, error type, message) of every error the payload raises."""
    with pytest.raises(ValidationError) as caught:
        validate(payload)
    return [(tuple(e["loc"]), e["type"], e["msg"]) for e in caught.value.errors()]


def with_(event_type: str, **changes: Any) -> Payload:
    return {**VALID[event_type], **changes}


def without(event_type: str, field: str) -> Payload:
    payload = dict(VALID[event_type])
    del payload[field]
    return payload


# -- valid events ---------------------------------------------------------------


def test_the_contract_example_is_valid() -> None:
    event = EVENT_ADAPTER.validate_json(CONTRACT_EXAMPLE)

    assert isinstance(event, DealStageChanged)
    assert event.event_id == "b6a1…"
    assert event.manager_id == "m-017"
    assert event.deal_id == "D-88412"
    assert event.from_stage == "qualification"
    assert event.to_stage == "proposal"
    assert event.amount == 12500.0
    assert event.occurred_at == datetime(2026, 11, 22, 7, 15, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(hours=3)


@pytest.mark.parametrize("event_type", sorted(CONTRACT_TYPES))
def test_every_contract_type_accepts_a_full_example(event_type: str) -> None:
    event = validate(VALID[event_type])

    assert type(event) is MODEL_OF_TYPE[event_type]
    assert event.type == event_type
    assert event.event_id == "evt-0001"
    assert event.manager_id == "m-017"
    assert event.source == "amocrm"
    assert event.occurred_at == datetime(2026, 11, 22, 10, 15, tzinfo=timezone(timedelta(hours=3)))


@pytest.mark.parametrize("event_type", sorted(CONTRACT_TYPES))
def test_every_contract_type_accepts_only_its_required_fields(event_type: str) -> None:
    payload = {
        "event_id": "e",
        "type": event_type,
        "occurred_at": "2026-11-22T07:15:00Z",
        "manager_id": "m",
        **MINIMAL[event_type],
    }

    event = validate(payload)

    assert type(event) is MODEL_OF_TYPE[event_type]
    assert event.source is None
    assert event.occurred_at.utcoffset() == timedelta(0)


def test_deal_pipeline_defaults_to_default() -> None:
    created = validate(without("deal.created", "pipeline"))
    changed = validate(without("deal.stage_changed", "pipeline"))

    assert isinstance(created, DealCreated)
    assert isinstance(changed, DealStageChanged)
    assert created.pipeline == "default"
    assert changed.pipeline == "default"


def test_optional_fields_default_to_none() -> None:
    created = validate({**COMMON, "type": "deal.created", **MINIMAL["deal.created"]})

    assert isinstance(created, DealCreated)
    assert created.amount is None
    assert created.product is None
    assert created.channel is None
    assert created.segment is None


def test_models_and_topics_cover_exactly_the_contract_types() -> None:
    assert set(EVENT_MODELS) == set(CONTRACT_TYPES)
    assert TOPIC_OF_TYPE == CONTRACT_TYPES
    assert EVENT_MODELS == MODEL_OF_TYPE


def test_events_are_immutable() -> None:
    event = validate(VALID["call.ended"])

    with pytest.raises(ValidationError, match="frozen"):
        event.manager_id = "someone-else"  # type: ignore[misc]


# -- optional extensions: customer, task description and links -------------------

FULL_TASK: Payload = {
    **VALID["task.created"],
    "description": "Call Anna by the script, confirm the demo date.\n\tAgenda in the card.",
    "links": ["https://crm.example.com/deals/D-1", "http://wiki.example.com/scripts/demo?v=2#a"],
}


@pytest.mark.parametrize(
    ("event_type", "added"),
    [
        ("deal.created", {"customer_id": "C-4411"}),
        ("task.created", {"description": FULL_TASK["description"], "links": FULL_TASK["links"]}),
    ],
)
def test_events_without_the_optional_extensions_validate_as_before(
    event_type: str, added: Payload
) -> None:
    before = validate(VALID[event_type])
    extended = validate({**VALID[event_type], **added})

    assert all(getattr(before, field) is None for field in added)
    assert extended.model_dump(exclude=set(added)) == before.model_dump(exclude=set(added))
    # Nothing appears in an event that its sender did not send.
    assert before.model_dump(exclude_none=True).keys() == VALID[event_type].keys()


def test_a_deal_carries_its_customer() -> None:
    created = validate(with_("deal.created", customer_id="ACME GmbH / 7"))

    assert isinstance(created, DealCreated)
    assert created.customer_id == "ACME GmbH / 7"


@pytest.mark.parametrize(
    ("customer", "kind"),
    [
        ("", "string_too_short"),
        (" ", "string_pattern_mismatch"),
        ("x" * 129, "string_too_long"),
        ("C\n1", "string_pattern_mismatch"),
        ("C\x85", "string_pattern_mismatch"),
    ],
)
def test_an_empty_long_or_unprintable_customer_is_rejected(customer: str, kind: str) -> None:
    errors = rejection(with_("deal.created", customer_id=customer))

    assert [(loc[-1], error) for loc, error, _ in errors] == [("customer_id", kind)]


def test_a_task_carries_its_description_and_links_verbatim() -> None:
    task = validate(FULL_TASK)

    assert isinstance(task, TaskCreated)
    assert task.description == FULL_TASK["description"]
    assert task.links == tuple(FULL_TASK["links"])


@pytest.mark.parametrize("text", ["", "Звонок по скрипту ✓", "line one\r\nline two"])
def test_descriptions_may_be_empty_multiline_or_any_script(text: str) -> None:
    task = validate({**FULL_TASK, "description": text})

    assert isinstance(task, TaskCreated)
    assert task.description == text


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x0b", "\x1b", "\x7f", "\x85"])
def test_control_characters_other_than_line_breaks_and_tabs_are_rejected(control: str) -> None:
    errors = rejection({**FULL_TASK, "description": f"call{control}back"})

    assert [(loc[-1], kind) for loc, kind, _ in errors] == [
        ("description", "string_pattern_mismatch")
    ]


def test_a_description_over_4000_characters_is_rejected() -> None:
    assert isinstance(validate({**FULL_TASK, "description": "x" * 4000}), TaskCreated)
    errors = rejection({**FULL_TASK, "description": "x" * 4001})

    assert [(loc[-1], kind) for loc, kind, _ in errors] == [("description", "string_too_long")]


@pytest.mark.parametrize(
    "link",
    [
        "",
        "crm.example.com/deals/1",
        "ftp://files.example.com/a",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https://example.com/a b",
        "https://example.com/\u0000",
        "HTTPS://EXAMPLE.COM",
        "https://example.com/" + "x" * 2029,
    ],
)
def test_links_that_are_not_http_urls_are_rejected(link: str) -> None:
    errors = rejection({**FULL_TASK, "links": [FULL_TASK["links"][0], link]})

    assert [loc for loc, _, _ in errors] == [("task.created", "links", 1)]


def test_a_link_of_2048_characters_is_accepted() -> None:
    link = "https://example.com/" + "x" * 2028
    task = validate({**FULL_TASK, "links": [link]})

    assert isinstance(task, TaskCreated)
    assert task.links == (link,)


def test_more_links_than_the_limit_are_rejected() -> None:
    links = [f"https://example.com/{n}" for n in range(MAX_TASK_LINKS + 1)]
    assert isinstance(validate({**FULL_TASK, "links": links[:-1]}), TaskCreated)
    errors = rejection({**FULL_TASK, "links": links})

    assert [(loc[-1], kind) for loc, kind, _ in errors] == [("links", "too_long")]


@pytest.mark.parametrize("links", ["https://example.com", {"url": "https://example.com"}, [1]])
def test_links_must_be_a_list_of_strings(links: object) -> None:
    assert rejection({**FULL_TASK, "links": links})


def test_the_largest_valid_task_fits_the_event_size_limit() -> None:
    payload = {
        **FULL_TASK,
        "description": "\U0001f4de" * 4000,
        "links": ["https://example.com/" + "x" * 2028] * MAX_TASK_LINKS,
    }
    raw = json.dumps(payload, ensure_ascii=False).encode()

    assert isinstance(EVENT_ADAPTER.validate_json(raw), TaskCreated)
    assert len(raw) < MAX_EVENT_BYTES


# -- call.ended: answered ---------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "expected"),
    [(0, False), (0.0, False), (0.5, True), (1, True), (3600, True)],
)
def test_answered_defaults_to_duration_above_zero(duration: float, expected: bool) -> None:
    payload = without("call.ended", "answered")
    payload["duration_seconds"] = duration

    event = validate(payload)

    assert isinstance(event, CallEnded)
    assert event.answered is None
    assert event.was_answered is expected


@pytest.mark.parametrize(("answered", "duration"), [(False, 45), (True, 0)])
def test_explicit_answered_wins_over_duration(answered: bool, duration: float) -> None:
    event = validate(with_("call.ended", answered=answered, duration_seconds=duration))

    assert isinstance(event, CallEnded)
    assert event.was_answered is answered


# -- timestamps -------------------------------------------------------------------


@pytest.mark.parametrize("naive", ["2026-11-22T10:15:00", "2026-11-22T10:15:00.250"])
def test_naive_occurred_at_is_rejected_with_a_timezone_message(naive: str) -> None:
    errors = rejection(with_("deal.created", occurred_at=naive))

    assert len(errors) == 1
    loc, kind, message = errors[0]
    assert loc == ("deal.created", "occurred_at")
    assert kind == "timezone_aware"
    assert "timezone" in message.lower()


def test_naive_due_at_is_rejected_with_a_timezone_message() -> None:
    errors = rejection(with_("task.created", due_at="2026-11-24T18:00:00"))

    assert [(loc, kind) for loc, kind, _ in errors] == [
        (("task.created", "due_at"), "timezone_aware")
    ]
    assert "timezone" in errors[0][2].lower()


@pytest.mark.parametrize("moment", ["2026-11-22T10:15:00Z", "2026-11-22T10:15:00-05:30"])
def test_offsets_of_any_zone_are_accepted(moment: str) -> None:
    event = validate(with_("task.overdue", occurred_at=moment))

    assert event.occurred_at.utcoffset() is not None


@pytest.mark.parametrize("moment", ["not a time", "2026-13-01T00:00:00Z", "2026-11-22"])
def test_malformed_timestamps_are_rejected(moment: str) -> None:
    errors = rejection(with_("task.overdue", occurred_at=moment))

    assert [loc for loc, _, _ in errors] == [("task.overdue", "occurred_at")]


def test_occurred_at_before_2000_is_rejected() -> None:
    errors = rejection(with_("call.ended", occurred_at="1999-12-31T23:59:59Z"))

    assert len(errors) == 1
    assert "occurred_at" in errors[0][2]
    assert "2000" in errors[0][2]


def test_occurred_at_on_the_first_moment_of_2000_is_accepted() -> None:
    event = validate(with_("call.ended", occurred_at="2000-01-01T00:00:00Z"))

    assert event.occurred_at == datetime(2000, 1, 1, tzinfo=UTC)


# -- numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["deal.created", "deal.stage_changed"])
def test_negative_amount_is_rejected(event_type: str) -> None:
    errors = rejection(with_(event_type, amount=-0.01))

    assert [(loc, kind) for loc, kind, _ in errors] == [
        ((event_type, "amount"), "greater_than_equal")
    ]


def test_zero_amount_is_accepted() -> None:
    event = validate(with_("deal.stage_changed", amount=0))

    assert isinstance(event, DealStageChanged)
    assert event.amount == 0.0


def test_negative_duration_is_rejected() -> None:
    errors = rejection(with_("call.ended", duration_seconds=-1))

    assert [(loc, kind) for loc, kind, _ in errors] == [
        (("call.ended", "duration_seconds"), "greater_than_equal")
    ]


def test_duration_above_a_week_is_rejected() -> None:
    errors = rejection(with_("call.ended", duration_seconds=7 * 86400 + 1))

    assert [loc for loc, _, _ in errors] == [("call.ended", "duration_seconds")]


def test_non_finite_numbers_are_rejected() -> None:
    raw = json.dumps(with_("deal.created", amount=float("inf"))).encode()  # "Infinity"

    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_json(raw)

    assert [tuple(e["loc"]) for e in caught.value.errors()] == [("deal.created", "amount")]


# -- identifiers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "field", "limit"),
    [
        ("call.ended", "event_id", 128),
        ("call.ended", "manager_id", 64),
        ("call.ended", "call_id", 128),
        ("deal.created", "deal_id", 128),
        ("task.created", "task_id", 128),
        ("deal.created", "stage", 64),
        ("deal.created", "product", 64),
        ("call.ended", "source", 64),
    ],
)
def test_ids_longer_than_the_limit_are_rejected(event_type: str, field: str, limit: int) -> None:
    at_limit = validate(with_(event_type, **{field: "x" * limit}))
    assert getattr(at_limit, field) == "x" * limit

    errors = rejection(with_(event_type, **{field: "x" * (limit + 1)}))

    assert [(loc, kind) for loc, kind, _ in errors] == [((event_type, field), "string_too_long")]
    assert str(limit) in errors[0][2]


@pytest.mark.parametrize("field", ["event_id", "manager_id", "call_id"])
def test_empty_ids_are_rejected(field: str) -> None:
    errors = rejection(with_("call.ended", **{field: ""}))

    assert [(loc, kind) for loc, kind, _ in errors] == [(("call.ended", field), "string_too_short")]


@pytest.mark.parametrize("control", ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"])
@pytest.mark.parametrize("field", ["event_id", "manager_id", "deal_id", "source"])
def test_control_characters_in_ids_are_rejected(field: str, control: str) -> None:
    errors = rejection(with_("deal.stage_changed", **{field: f"m{control}17"}))

    assert [(loc, kind) for loc, kind, _ in errors] == [
        (("deal.stage_changed", field), "string_pattern_mismatch")
    ]


@pytest.mark.parametrize("control", ["\x85", "\x9b"])
def test_c1_control_characters_in_ids_are_rejected(control: str) -> None:
    rejection(with_("call.ended", manager_id=f"m{control}17"))


def test_printable_unicode_ids_are_accepted() -> None:
    event = validate(with_("call.ended", manager_id="Zoë-17 (Köln) №5", event_id="b6a1…"))

    assert event.manager_id == "Zoë-17 (Köln) №5"


# -- types and structure ----------------------------------------------------------


@pytest.mark.parametrize("unknown", ["deal.deleted", "Deal.Created", "", "call"])
def test_unknown_type_is_rejected(unknown: str) -> None:
    errors = rejection({**VALID["call.ended"], "type": unknown})

    assert [(loc, kind) for loc, kind, _ in errors] == [((), "union_tag_invalid")]
    assert repr(unknown) in errors[0][2]


def test_missing_type_is_rejected() -> None:
    errors = rejection(without("call.ended", "type"))

    assert [(loc, kind) for loc, kind, _ in errors] == [((), "union_tag_not_found")]


@pytest.mark.parametrize("field", ["event_id", "occurred_at", "manager_id"])
@pytest.mark.parametrize("event_type", sorted(CONTRACT_TYPES))
def test_missing_common_field_is_rejected(event_type: str, field: str) -> None:
    errors = rejection(without(event_type, field))

    assert [(loc, kind) for loc, kind, _ in errors] == [((event_type, field), "missing")]


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        ("deal.created", "deal_id"),
        ("deal.created", "stage"),
        ("deal.stage_changed", "deal_id"),
        ("deal.stage_changed", "to_stage"),
        ("task.created", "task_id"),
        ("task.created", "task_type"),
        ("task.created", "due_at"),
        ("task.completed", "task_id"),
        ("task.overdue", "task_id"),
        ("call.ended", "call_id"),
        ("call.ended", "direction"),
        ("call.ended", "duration_seconds"),
    ],
)
def test_missing_type_specific_field_is_rejected(event_type: str, field: str) -> None:
    errors = rejection(without(event_type, field))

    assert [(loc, kind) for loc, kind, _ in errors] == [((event_type, field), "missing")]


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("call.ended", "duration_seconds", "3"),
        ("deal.created", "amount", "3"),
        ("deal.stage_changed", "amount", "12500"),
        ("call.ended", "duration_seconds", True),
        ("call.ended", "answered", "true"),
        ("call.ended", "answered", 1),
        ("call.ended", "manager_id", 17),
        ("call.ended", "event_id", 1),
        ("deal.created", "deal_id", 88412),
        ("call.ended", "occurred_at", 1763795700),
        ("call.ended", "direction", "INBOUND"),
        ("call.ended", "source", ["amocrm"]),
    ],
)
def test_wrong_types_are_rejected_strictly(event_type: str, field: str, value: object) -> None:
    errors = rejection(with_(event_type, **{field: value}))

    assert [loc for loc, _, _ in errors] == [(event_type, field)]


def test_integers_are_accepted_as_numbers() -> None:
    event = validate(with_("call.ended", duration_seconds=42))

    assert isinstance(event, CallEnded)
    assert event.duration_seconds == 42.0


def test_unknown_fields_are_ignored() -> None:
    payload = with_(
        "call.ended",
        recording_url="https://example.invalid/r/1",
        crm={"nested": [1, 2, 3]},
        schema_version=2,
    )

    event = validate(payload)

    assert event == validate(VALID["call.ended"])
    assert not hasattr(event, "recording_url")
    assert "recording_url" not in event.model_dump()


def test_fields_of_another_type_are_ignored_too() -> None:
    event = validate(with_("task.overdue", duration_seconds=-5, to_stage=""))

    assert isinstance(event, TaskOverdue)


# -- JSON Schema export -----------------------------------------------------------


def _without_id(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    document.pop("$id", None)
    return document


def test_exactly_one_committed_schema_file_per_event_type() -> None:
    committed = sorted(path.name for path in SCHEMA_DIR.iterdir())

    assert committed == sorted(f"{event_type}.json" for event_type in CONTRACT_TYPES)
    assert sorted(render_schemas()) == committed


def test_committed_schemas_match_the_models_byte_for_byte() -> None:
    stale = [
        name
        for name, text in render_schemas().items()
        if not (SCHEMA_DIR / name).is_file()
        or (SCHEMA_DIR / name).read_bytes() != text.encode("utf-8")
    ]

    assert not stale, (
        f"schemas/json/ has drifted from schemas/events.py in {stale}; "
        "run `salespulse schemas export` and commit the result"
    )


def test_committed_schemas_match_the_models_apart_from_the_id() -> None:
    """Guards every other part of the schemas while the $id drift above stands."""
    drifted = [
        name
        for name, text in render_schemas().items()
        if _without_id((SCHEMA_DIR / name).read_text(encoding="utf-8")) != _without_id(text)
    ]

    assert not drifted, (
        f"schemas/json/ has drifted from schemas/events.py in {drifted}; "
        "run `salespulse schemas export` and commit the result"
    )


def test_render_schemas_is_deterministic() -> None:
    assert render_schemas() == render_schemas()


def _check_structure(document: dict[str, Any], event_type: str) -> None:
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["title"] == event_type
    assert event_type in document["$id"]
    assert document["type"] == "object"
    properties = document["properties"]
    assert isinstance(properties, dict)
    assert properties["type"]["const"] == event_type
    required = document["required"]
    assert isinstance(required, list)
    assert set(required) <= set(properties)
    assert {"event_id", "type", "occurred_at", "manager_id"} <= set(required)
    assert "source" not in required
    assert properties["occurred_at"]["format"] == "date-time"
    model = EVENT_MODELS[event_type]
    expected_required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert set(required) == expected_required
    assert set(properties) == set(model.model_fields)


def test_export_writes_valid_json_schema_documents(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)

    assert sorted(path.name for path in written) == sorted(
        f"{event_type}.json" for event_type in CONTRACT_TYPES
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(p.name for p in written)
    rendered = render_schemas()
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        jsonschema = None
    for path in written:
        event_type = path.name.removesuffix(".json")
        text = path.read_text(encoding="utf-8")
        assert text == rendered[path.name]
        document = json.loads(text)
        _check_structure(document, event_type)
        if jsonschema is not None:
            jsonschema.Draft202012Validator.check_schema(document)
            jsonschema.validate(json.loads(json.dumps(VALID[event_type])), document)


def test_export_removes_stale_schema_files_only(tmp_path: Path) -> None:
    (tmp_path / "deal.deleted.json").write_text("{}", encoding="utf-8")
    (tmp_path / "README.md").write_text("keep me", encoding="utf-8")

    export_schemas(tmp_path / ".")

    assert not (tmp_path / "deal.deleted.json").exists()
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "keep me"
    assert len(list(tmp_path.glob("*.json"))) == len(CONTRACT_TYPES)


def test_export_creates_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "json"

    written = export_schemas(target)

    assert all(path.parent == target for path in written)
    assert len(written) == len(CONTRACT_TYPES)
