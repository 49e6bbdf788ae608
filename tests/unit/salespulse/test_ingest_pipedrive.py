"""Pipedrive webhooks v2 (as Pipedrive documents them) into contract events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from salespulse.ingest.adapters import PayloadError, load_mapping
from salespulse.ingest.pipedrive import PipedriveAdapter, PipedriveMapping
from salespulse.ingest.validation import Candidate, Validator
from salespulse.settings import Settings
from tests.support.ingest import MAPPINGS, fixture


@pytest.fixture
def adapter() -> PipedriveAdapter:
    return PipedriveAdapter(load_mapping(MAPPINGS / "pipedrive.example.toml", PipedriveMapping))


def only_event(candidates: list[Candidate]) -> dict[str, Any]:
    assert len(candidates) == 1, candidates
    assert candidates[0].event is not None, candidates[0]
    event: dict[str, Any] = candidates[0].event
    return event


def payload(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(fixture(f"pipedrive/{name}.json"))
    return loaded


def test_created_deal(adapter: PipedriveAdapter) -> None:
    assert only_event(adapter.translate(fixture("pipedrive/deal_create.json"))) == {
        "event_id": "pipedrive:12882925:a5c5c7e2-0d7e-4b0e-9d55-0f6b5b2f1a01:created",
        "type": "deal.created",
        "occurred_at": "2026-05-28T08:00:00+00:00",
        "manager_id": "m-017",
        "source": "pipedrive",
        "deal_id": "311",
        "pipeline": "default",
        "stage": "lead",
        "amount": 12500.0,
        "customer_id": "2",
    }


def test_a_deal_without_an_organisation_has_no_customer(adapter: PipedriveAdapter) -> None:
    body = payload("deal_create")
    body["data"]["org_id"] = None
    assert "customer_id" not in only_event(adapter.translate(json.dumps(body).encode()))


def test_stage_change_carries_the_previous_stage_and_value(adapter: PipedriveAdapter) -> None:
    assert only_event(adapter.translate(fixture("pipedrive/deal_stage_change.json"))) == {
        "event_id": "pipedrive:12882925:a5c5c7e2-0d7e-4b0e-9d55-0f6b5b2f1a02:stage",
        "type": "deal.stage_changed",
        "occurred_at": "2026-05-28T09:30:00+00:00",
        "manager_id": "m-017",
        "source": "pipedrive",
        "deal_id": "311",
        "pipeline": "default",
        "from_stage": "qualified",
        "to_stage": "proposal",
        "amount": 13000.0,
    }


def test_a_deal_marked_won_moves_to_the_won_stage(adapter: PipedriveAdapter) -> None:
    event = only_event(adapter.translate(fixture("pipedrive/deal_won.json")))
    assert (event["type"], event["from_stage"], event["to_stage"], event["amount"]) == (
        "deal.stage_changed",
        "negotiation",
        "won",
        13000.0,
    )


def test_a_reopened_deal_moves_back_to_its_stage(adapter: PipedriveAdapter) -> None:
    body = payload("deal_won")
    body["data"]["status"] = "open"
    body["previous"] = {"status": "lost"}
    event = only_event(adapter.translate(json.dumps(body).encode()))
    assert (event["from_stage"], event["to_stage"]) == ("lost", "negotiation")


def test_a_deal_created_won_is_created_and_closed(adapter: PipedriveAdapter) -> None:
    body = payload("deal_create")
    body["data"]["status"] = "won"
    candidates = adapter.translate(json.dumps(body).encode())
    assert [(c.type, c.event and c.event.get("to_stage")) for c in candidates] == [
        ("deal.created", None),
        ("deal.stage_changed", "won"),
    ]
    assert len({c.event_id for c in candidates}) == 2


def test_activity_with_time_is_a_task_due_then_in_utc(adapter: PipedriveAdapter) -> None:
    assert only_event(adapter.translate(fixture("pipedrive/activity_create.json"))) == {
        "event_id": "pipedrive:12882925:b6d6d8f3-1e8f-4c1f-8e66-1a7c6c3a2b01:created",
        "type": "task.created",
        "occurred_at": "2026-05-28T10:00:00+00:00",
        "manager_id": "m-018",
        "source": "pipedrive",
        "task_id": "1207",
        "task_type": "call",
        "due_at": "2026-05-29T09:30:00+00:00",
        "deal_id": "311",
    }


def test_all_day_activity_is_due_at_the_end_of_its_day_in_the_mapped_zone(
    adapter: PipedriveAdapter,
) -> None:
    body = payload("activity_create")
    body["data"].update(due_time="", type="deadline")
    event = only_event(adapter.translate(json.dumps(body).encode()))
    # Europe/Berlin in May is UTC+2; "deadline" maps to proposal in the example mapping.
    assert (event["due_at"], event["task_type"]) == ("2026-05-29T23:59:59+02:00", "proposal")


def test_activity_marked_done_completes_the_task(adapter: PipedriveAdapter) -> None:
    assert only_event(adapter.translate(fixture("pipedrive/activity_done.json"))) == {
        "event_id": "pipedrive:12882925:activity:1208:done",
        "type": "task.completed",
        "occurred_at": "2026-05-28T16:45:00+00:00",
        "manager_id": "m-018",
        "source": "pipedrive",
        "task_id": "1208",
        "deal_id": "311",
    }


def test_deletions_and_other_changes_are_ignored(adapter: PipedriveAdapter) -> None:
    [deleted] = adapter.translate(fixture("pipedrive/deal_delete.json"))
    assert (deleted.status, deleted.reason) == ("ignored", "not_translated")
    renamed = payload("deal_stage_change")
    renamed["previous"] = {"title": "Old title"}
    [change] = adapter.translate(json.dumps(renamed).encode())
    assert change.status == "ignored"


def test_unmapped_owner_stage_and_pipeline_are_rejected(adapter: PipedriveAdapter) -> None:
    def reason(**data: Any) -> str | None:
        body = payload("deal_stage_change")
        body["data"].update(data)
        [candidate] = adapter.translate(json.dumps(body).encode())
        assert candidate.status == "rejected"
        return candidate.reason

    assert reason(owner_id=1) == "unmapped_user"
    assert reason(stage_id=99) == "unmapped_stage"
    assert reason(pipeline_id=7) == "unmapped_pipeline"


def test_v1_webhooks_are_rejected_as_unsupported(adapter: PipedriveAdapter) -> None:
    body = {"v": 1, "meta": {"v": 1, "action": "updated", "object": "deal", "id": 1}, "current": {}}
    [candidate] = adapter.translate(json.dumps(body).encode())
    assert (candidate.status, candidate.reason) == ("rejected", "unsupported_version")


def test_retried_webhook_same_ids(adapter: PipedriveAdapter) -> None:
    body = payload("deal_won")
    body["meta"]["attempt"] = 3
    retried = adapter.translate(json.dumps(body).encode())
    first = adapter.translate(fixture("pipedrive/deal_won.json"))
    assert [c.event_id for c in retried] == [c.event_id for c in first]


def test_every_translated_event_passes_the_worker_intake(adapter: PipedriveAdapter) -> None:
    validator = Validator(
        Settings(), check_funnel=True, clock=lambda: datetime(2026, 6, 1, tzinfo=UTC)
    )
    for name in (
        "deal_create",
        "deal_stage_change",
        "deal_won",
        "activity_create",
        "activity_done",
    ):
        outcome = validator.validate(adapter.translate(fixture(f"pipedrive/{name}.json")))
        assert [r.status for r in outcome.results] == ["accepted"], outcome.results


@pytest.mark.parametrize("body", [b"[]", b"{}", b'{"meta": 1}', b"not json"])
def test_what_is_not_a_pipedrive_webhook_is_a_payload_error(
    adapter: PipedriveAdapter, body: bytes
) -> None:
    with pytest.raises(PayloadError):
        adapter.translate(body)
