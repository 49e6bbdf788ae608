"""amoCRM webhooks (form-encoded, as amoCRM documents them) into contract events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from salespulse.ingest.adapters import MappingError, PayloadError, load_mapping
from salespulse.ingest.amocrm import AmoCrmAdapter, AmoMapping, expand_form
from salespulse.ingest.validation import Candidate, Validator
from salespulse.settings import Settings
from tests.support.ingest import MAPPINGS, fixture


@pytest.fixture
def adapter() -> AmoCrmAdapter:
    return AmoCrmAdapter(load_mapping(MAPPINGS / "amocrm.example.toml", AmoMapping))


def events(candidates: list[Candidate]) -> list[dict[str, Any]]:
    return [c.event for c in candidates if c.event is not None]


def test_form_keys_become_nested_structures() -> None:
    body = urlencode(
        [
            ("leads[status][0][id]", "1"),
            ("leads[status][0][tags][0][name]", "vip"),
            ("leads[status][1][id]", "2"),
            ("account[subdomain]", "acme"),
        ]
    ).encode()
    assert expand_form(body) == {
        "leads": {"status": {"0": {"id": "1", "tags": {"0": {"name": "vip"}}}, "1": {"id": "2"}}},
        "account": {"subdomain": "acme"},
    }


def test_lead_status_changes_become_stage_changes(adapter: AmoCrmAdapter) -> None:
    candidates = adapter.translate(fixture("amocrm/lead_status.txt"))
    assert events(candidates) == [
        {
            "event_id": "amocrm:acme:lead:25399013:status:20067736:20067739:1779955200",
            "type": "deal.stage_changed",
            "occurred_at": "2026-05-28T08:00:00+00:00",
            "manager_id": "m-017",
            "source": "amocrm",
            "deal_id": "25399013",
            "pipeline": "default",
            "from_stage": "qualified",
            "to_stage": "demo",
            "amount": 22500.0,
        },
        {
            # 142 is amoCRM's own "successfully realized" status, the same in every pipeline
            "event_id": "amocrm:acme:lead:25399014:status:20067745:142:1779958800",
            "type": "deal.stage_changed",
            "occurred_at": "2026-05-28T09:00:00+00:00",
            "manager_id": "m-018",
            "source": "amocrm",
            "deal_id": "25399014",
            "pipeline": "default",
            "from_stage": "negotiation",
            "to_stage": "won",
            "amount": 48000.0,
        },
    ]
    assert [c.ref for c in candidates] == ["leads[status][0]", "leads[status][1]"]


def test_added_lead_becomes_deal_created(adapter: AmoCrmAdapter) -> None:
    assert events(adapter.translate(fixture("amocrm/lead_add.txt"))) == [
        {
            "event_id": "amocrm:acme:lead:25399015:created",
            "type": "deal.created",
            "occurred_at": "2026-05-28T10:00:00+00:00",
            "manager_id": "m-017",
            "source": "amocrm",
            "deal_id": "25399015",
            "pipeline": "default",
            "stage": "lead",
            "amount": 9900.0,
        }
    ]


def test_tasks_added_and_completed(adapter: AmoCrmAdapter) -> None:
    assert events(adapter.translate(fixture("amocrm/tasks.txt"))) == [
        {
            "event_id": "amocrm:acme:task:5061871:created",
            "type": "task.created",
            "occurred_at": "2026-05-28T11:00:00+00:00",
            "manager_id": "m-017",
            "source": "amocrm",
            "task_id": "5061871",
            "task_type": "call",
            "due_at": "2026-05-29T10:59:00+00:00",
            "deal_id": "25399015",
            "description": "Call back about the licence",
        },
        {
            "event_id": "amocrm:acme:task:5061870:completed",
            "type": "task.completed",
            "occurred_at": "2026-05-28T12:00:00+00:00",
            "manager_id": "m-017",
            "source": "amocrm",
            "task_id": "5061870",
            "deal_id": "25399013",
        },
    ]


def test_unmapped_users_and_statuses_are_rejected_and_other_entities_ignored(
    adapter: AmoCrmAdapter,
) -> None:
    candidates = adapter.translate(fixture("amocrm/unmapped.txt"))
    assert [(c.status, c.reason, c.ref) for c in candidates] == [
        ("rejected", "unmapped_user", "leads[status][0]"),
        ("rejected", "unmapped_stage", "leads[status][1]"),
        ("ignored", "not_translated", "contacts[update][0]"),
    ]
    assert "9999999" in (candidates[0].detail or "")
    assert candidates[0].event_id is not None  # the response names the event it refused


def test_a_retried_webhook_gives_the_same_event_ids(adapter: AmoCrmAdapter) -> None:
    first = adapter.translate(fixture("amocrm/lead_status.txt"))
    again = adapter.translate(fixture("amocrm/lead_status.txt"))
    assert [c.event_id for c in first] == [c.event_id for c in again]
    assert len({c.event_id for c in first}) == 2


def test_an_edit_of_a_completed_task_repeats_its_completion_id(adapter: AmoCrmAdapter) -> None:
    body = fixture("amocrm/tasks.txt").replace(b"1779969600", b"1779980000")
    completed = [c for c in adapter.translate(body) if c.type == "task.completed"]
    assert completed[0].event_id == "amocrm:acme:task:5061870:completed"


@pytest.mark.parametrize("text", [b"", b"+++", b"x" * 4001, b"call%07back", b"%00"], ids=repr)
def test_a_task_text_the_contract_cannot_take_is_left_out_not_the_task(
    adapter: AmoCrmAdapter, text: bytes
) -> None:
    body = fixture("amocrm/tasks.txt").replace(b"Call+back+about+the+licence", text)
    created = [c for c in adapter.translate(body) if c.type == "task.created"]
    assert created[0].event is not None
    assert "description" not in created[0].event


def test_a_multiline_task_text_is_kept_as_written(adapter: AmoCrmAdapter) -> None:
    body = fixture("amocrm/tasks.txt").replace(b"Call+back+about+the+licence", b"Call%0Aback")
    created = [c for c in adapter.translate(body) if c.type == "task.created"]
    assert created[0].event is not None
    assert created[0].event["description"] == "Call\nback"


def test_webhooks_of_another_account_are_rejected(adapter: AmoCrmAdapter) -> None:
    body = fixture("amocrm/lead_add.txt").replace(b"subdomain%5D=acme", b"subdomain%5D=other")
    [candidate] = adapter.translate(body)
    assert (candidate.status, candidate.reason) == ("rejected", "unknown_account")


def test_every_translated_event_passes_the_worker_intake(adapter: AmoCrmAdapter) -> None:
    validator = Validator(
        Settings(), check_funnel=True, clock=lambda: datetime(2026, 6, 1, tzinfo=UTC)
    )
    for name in ("lead_status", "lead_add", "tasks"):
        outcome = validator.validate(adapter.translate(fixture(f"amocrm/{name}.txt")))
        assert [r.status for r in outcome.results] == ["accepted"] * len(outcome.results)
        assert {r.key for r in outcome.records} <= {b"m-017", b"m-018"}


@pytest.mark.parametrize(
    "body", [b"", b"hello", b"a=1&b=2", "\xff".encode("latin-1"), b"leads[x]=1&leads[x][y]=2"]
)
def test_what_is_not_an_amocrm_form_is_a_payload_error(adapter: AmoCrmAdapter, body: bytes) -> None:
    with pytest.raises(PayloadError):
        adapter.translate(body)


def test_a_mapping_with_an_unknown_key_names_file_and_field(tmp_path: Any) -> None:
    path = tmp_path / "amocrm.toml"
    path.write_text('[users]\n"1" = "m-1"\n[pipeline."5"]\nname = "default"\n')
    with pytest.raises(MappingError, match=r"amocrm.toml.*\n.*pipeline"):
        load_mapping(path, AmoMapping)
