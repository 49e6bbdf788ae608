"""HubSpot webhook notifications (as HubSpot documents them) into contract events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from salespulse.ingest.adapters import PayloadError, load_mapping
from salespulse.ingest.auth import hubspot_sign, hubspot_signature_matches, hubspot_uri
from salespulse.ingest.hubspot import HubSpotAdapter, HubSpotMapping
from salespulse.ingest.validation import Validator
from salespulse.settings import Settings
from tests.support.ingest import MAPPINGS, fixture


@pytest.fixture
def mapping() -> HubSpotMapping:
    return load_mapping(MAPPINGS / "hubspot.example.toml", HubSpotMapping)


@pytest.fixture
def adapter(mapping: HubSpotMapping) -> HubSpotAdapter:
    return HubSpotAdapter(mapping)


def test_deal_notifications_become_creation_and_stage_changes(adapter: HubSpotAdapter) -> None:
    candidates = adapter.translate(fixture("hubspot/deal_notifications.json"))
    assert [c.event for c in candidates[:3]] == [
        {
            "event_id": "hubspot:62515:1876300117:deal.creation:9102345678:1779955200000",
            "type": "deal.created",
            "occurred_at": "2026-05-28T08:00:00+00:00",
            "manager_id": "m-017",
            "source": "hubspot",
            "deal_id": "9102345678",
            "pipeline": "default",
            "stage": "lead",
        },
        {
            "event_id": "hubspot:62515:1876300118:deal.propertyChange:9102345678:1779958800000",
            "type": "deal.stage_changed",
            "occurred_at": "2026-05-28T09:00:00+00:00",
            "manager_id": "m-017",
            "source": "hubspot",
            "deal_id": "9102345678",
            "pipeline": "default",
            "to_stage": "proposal",
        },
        {
            "event_id": "hubspot:62515:1876300119:deal.propertyChange:9102345679:1779962400000",
            "type": "deal.stage_changed",
            "occurred_at": "2026-05-28T10:00:00+00:00",
            "manager_id": "m-018",
            "source": "hubspot",
            "deal_id": "9102345679",
            "pipeline": "default",
            "to_stage": "won",
        },
    ]
    # An amount change and a contact have no salespulse event.
    assert [(c.status, c.reason) for c in candidates[3:]] == [
        ("ignored", "not_translated"),
        ("ignored", "not_translated"),
    ]


def test_a_retry_carries_the_same_event_id(adapter: HubSpotAdapter) -> None:
    notifications: list[dict[str, Any]] = json.loads(fixture("hubspot/deal_notifications.json"))
    retried = [{**n, "attemptNumber": n["attemptNumber"] + 3} for n in notifications]
    first = adapter.translate(json.dumps(notifications).encode())
    again = adapter.translate(json.dumps(retried).encode())
    assert [c.event_id for c in first] == [c.event_id for c in again]


def test_changes_by_no_user_and_unknown_stages_are_rejected(adapter: HubSpotAdapter) -> None:
    candidates = adapter.translate(fixture("hubspot/unmapped.json"))
    assert [(c.status, c.reason) for c in candidates] == [
        ("rejected", "unmapped_user"),
        ("rejected", "unmapped_stage"),
    ]


def test_a_default_manager_takes_changes_by_workflows(mapping: HubSpotMapping) -> None:
    adapter = HubSpotAdapter(mapping.model_copy(update={"default_manager": "m-000"}))
    first = adapter.translate(fixture("hubspot/unmapped.json"))[0]
    assert first.event is not None
    assert first.event["manager_id"] == "m-000"


def test_generic_object_notifications_of_deals_are_read_too(adapter: HubSpotAdapter) -> None:
    body = json.dumps(
        [
            {
                "eventId": 5,
                "portalId": 62515,
                "occurredAt": 1779958800000,
                "subscriptionType": "object.propertyChange",
                "objectTypeId": "0-3",
                "objectId": 77,
                "propertyName": "dealstage",
                "propertyValue": "closedlost",
                "sourceId": "userId:1234567",
            }
        ]
    ).encode()
    [candidate] = adapter.translate(body)
    assert candidate.event is not None
    assert (candidate.event["to_stage"], candidate.event["deal_id"]) == ("lost", "77")


def test_other_portals_are_rejected(adapter: HubSpotAdapter) -> None:
    body = fixture("hubspot/deal_notifications.json").replace(b"62515", b"99999")
    assert {c.reason for c in adapter.translate(body)} == {"unknown_account"}


def test_every_translated_event_passes_the_worker_intake(adapter: HubSpotAdapter) -> None:
    validator = Validator(
        Settings(), check_funnel=True, clock=lambda: datetime(2026, 6, 1, tzinfo=UTC)
    )
    outcome = validator.validate(adapter.translate(fixture("hubspot/deal_notifications.json")))
    assert [r.status for r in outcome.results] == ["accepted"] * 3 + ["ignored"] * 2


@pytest.mark.parametrize("body", [b"{", b'"text"', b"42", b"\xff"])
def test_what_is_not_json_or_notifications_is_a_payload_error(
    adapter: HubSpotAdapter, body: bytes
) -> None:
    with pytest.raises(PayloadError):
        adapter.translate(body)


def test_items_that_are_not_objects_are_rejected_one_by_one(adapter: HubSpotAdapter) -> None:
    assert [c.reason for c in adapter.translate(b'[1, "x", null]')] == ["not_an_object"] * 3


# HubSpot's v3 signature: HMAC-SHA256 over method + URI + body + timestamp, base64.


def test_v3_signature_round_trip_and_rejections() -> None:
    secret = SecretStr("client-secret")
    body = b'[{"eventId":1}]'
    url = "https://ingest.example.com/v1/webhooks/hubspot"
    now = 1_780_000_000.0
    timestamp = str(int(now * 1000))
    signature = hubspot_sign("POST", url, body, timestamp, "client-secret")

    def check(**changes: Any) -> bool:
        values: dict[str, Any] = {
            "signature": signature,
            "timestamp": timestamp,
            "method": "POST",
            "url": url,
            "body": body,
            "secret": secret,
            "max_age_seconds": 300,
            "now": now,
        }
        values.update(changes)
        return hubspot_signature_matches(**values)

    assert check()
    assert not check(body=body + b" ")
    assert not check(url=url + "?x=1")
    assert not check(secret=SecretStr("other"))
    assert not check(now=now + 301)  # replayed after five minutes
    assert not check(timestamp="soon")
    assert not check(signature=None)


def test_v3_uri_decodes_the_characters_hubspot_decodes() -> None:
    assert hubspot_uri("https://h/p?a=%3A%2F%40x%20y") == "https://h/p?a=:/@x%20y"
