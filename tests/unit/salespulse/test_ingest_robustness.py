"""No body a client can send makes an adapter or the validator raise (a 500)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salespulse.ingest.adapters import PayloadError
from salespulse.ingest.validation import Candidate, Validator
from salespulse.settings import Settings
from tests.support.ingest import fixture, sample_adapters

ADAPTERS = sample_adapters()
VALIDATOR = Validator(Settings(), check_funnel=True, clock=lambda: datetime(2026, 6, 1, tzinfo=UTC))
FAST = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
field_names = st.sampled_from(
    ["id", "status_id", "pipeline_id", "old_status_id", "responsible_user_id", "price",
     "last_modified", "date_create", "complete_till", "task_type", "element_type",
     "element_id", "status", "owner_id", "stage_id", "value", "done", "due_date", "due_time",
     "type", "eventId", "objectId", "occurredAt", "propertyName", "propertyValue", "sourceId",
     "subscriptionType", "portalId", "timestamp", "action", "entity", "version", "company_id"]
)  # fmt: skip
field_values = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.sampled_from(["142", "20067736", "9217056", "2079676", "1", "2", "deal", "change",
                     "2.0", "won", "lost", "open", "dealstage", "userId:1234567", "62515",
                     "2026-05-29", "25:61", "9999-12-31", "1779955200", "99999999999999"]),
)  # fmt: skip


def survive(adapter: str, body: bytes) -> list[Candidate]:
    try:
        candidates = ADAPTERS[adapter].translate(body)
    except PayloadError:
        return []
    VALIDATOR.validate(candidates)
    return candidates


@FAST
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["leads", "task", "contacts", "account"]),
            st.sampled_from(["add", "status", "update", "subdomain", "id", "0"]),
            st.sampled_from(["0", "1", "x", ""]),
            field_names,
            field_values,
        ),
        max_size=12,
    )
)
def test_amocrm_forms(fields: list[tuple[str, str, str, str, str]]) -> None:
    pairs = [(f"{e}[{a}][{i}][{f}]", v) for e, a, i, f, v in fields]
    survive("amocrm", urlencode(pairs).encode())


@FAST
@given(st.lists(st.dictionaries(field_names, json_values | field_values, max_size=10), max_size=5))
def test_hubspot_notifications(items: list[dict[str, Any]]) -> None:
    survive("hubspot", json.dumps(items).encode())


@FAST
@given(
    st.dictionaries(field_names, json_values | field_values, max_size=8),
    st.dictionaries(field_names, json_values | field_values, max_size=8),
    st.dictionaries(field_names, json_values | field_values, max_size=4),
)
def test_pipedrive_webhooks(
    meta: dict[str, Any], data: dict[str, Any], previous: dict[str, Any]
) -> None:
    survive("pipedrive", json.dumps({"meta": meta, "data": data, "previous": previous}).encode())


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes(body: bytes) -> None:
    for name in ADAPTERS:
        survive(name, body)


@FAST
@given(json_values)
def test_arbitrary_events(value: Any) -> None:
    VALIDATOR.validate([Candidate(0, value)])


def test_mutations_of_the_documented_samples() -> None:
    """Every field of every sample, replaced by awkward values."""
    awkward: list[Any] = [None, "", "x", -1, 10**30, 1e308, [], {}, True, "9999-12-31"]
    for name in ("deal_create", "deal_stage_change", "deal_won", "activity_create",
                 "activity_done"):  # fmt: skip
        sample = json.loads(fixture(f"pipedrive/{name}.json"))
        for part in ("meta", "data", "previous"):
            for key in list(sample.get(part) or {}):
                for value in awkward:
                    changed = {**sample, part: {**sample[part], key: value}}
                    survive("pipedrive", json.dumps(changed).encode())
    notifications = json.loads(fixture("hubspot/deal_notifications.json"))
    for key in notifications[1]:
        for value in awkward:
            survive("hubspot", json.dumps([{**notifications[1], key: value}]).encode())
