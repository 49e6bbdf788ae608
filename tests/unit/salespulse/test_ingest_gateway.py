"""The gateway's HTTP semantics, with an in-memory publisher in place of the broker."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from salespulse.ingest.app import Gateway
from salespulse.ingest.auth import hubspot_sign, sign
from salespulse.ingest.publisher import PublishError
from salespulse.settings import Settings
from tests.support.ingest import (
    HMAC_SECRET,
    HUBSPOT_SECRET,
    REPO,
    TOKEN,
    FakePublisher,
    fixture,
    ingest_settings,
    sample_adapters,
)
from tests.support.scrape import parse, total

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 8192
Client = TestClient[web.Request, web.Application]


def deal(event_id: str = "e-1", manager: str = "m-1", **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "deal.created",
        "occurred_at": "2026-06-01T09:00:00+02:00",
        "manager_id": manager,
        "deal_id": f"D-{event_id}",
        "stage": "lead",
        **fields,
    }


def call(event_id: str = "c-1", manager: str = "m-2") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "call.ended",
        "occurred_at": "2026-06-01T09:30:00Z",
        "manager_id": manager,
        "call_id": f"C-{event_id}",
        "direction": "outbound",
        "duration_seconds": 120,
    }


class Harness:
    def __init__(self, client: Client, publisher: FakePublisher, registry: CollectorRegistry):
        self.client = client
        self.publisher = publisher
        self.registry = registry

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **AUTH, **(headers or {})}
        response = await self.client.post(path, data=data, headers=sent, **kwargs)
        text = await response.text()
        parsed = json.loads(text) if text and response.content_type == "application/json" else {}
        return response.status, parsed, dict(response.headers)

    async def metric(self, name: str, **labels: str) -> float:
        response = await self.client.get("/metrics")
        return total(parse(await response.text()), name, **labels)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    publisher = FakePublisher()
    registry = CollectorRegistry()
    gateway = Gateway(
        Settings(),
        ingest_settings(max_body_bytes=LIMIT, max_batch_events=5),
        publisher,
        registry,
        sample_adapters(),
        clock=lambda: NOW,
    )
    async with TestClient(TestServer(gateway.app())) as client:
        yield Harness(client, publisher, registry)


# -- accepted -----------------------------------------------------------------------


async def test_one_event_is_published_to_its_topic_keyed_by_manager(harness: Harness) -> None:
    status, body, _ = await harness.post("/v1/events", deal())
    assert status == 202
    assert body == {
        "accepted": 1,
        "rejected": 0,
        "ignored": 0,
        "results": [{"index": 0, "event_id": "e-1", "status": "accepted", "type": "deal.created"}],
    }
    [record] = harness.publisher.records
    assert (record.topic, record.key) == ("crm.deals", b"m-1")
    assert json.loads(record.value) == deal()


async def test_a_batch_goes_to_the_topics_of_its_types(harness: Harness) -> None:
    status, body, _ = await harness.post("/v1/events", [deal(), call(), deal("e-2", "m-3")])
    assert (status, body["accepted"]) == (202, 3)
    assert [(r.topic, r.key) for r in harness.publisher.records] == [
        ("crm.deals", b"m-1"),
        ("crm.calls", b"m-2"),
        ("crm.deals", b"m-3"),
    ]


# -- rejected -------------------------------------------------------------------------


async def test_a_partial_batch_is_207_with_reasons_and_only_valid_events_published(
    harness: Harness,
) -> None:
    batch = [deal(), {"type": "deal.created"}, call(), "text", deal("e-9", type="deal.exploded")]
    status, body, _ = await harness.post("/v1/events", batch)
    assert status == 207
    assert (body["accepted"], body["rejected"]) == (2, 3)
    assert [(r["index"], r["status"], r.get("reason")) for r in body["results"]] == [
        (0, "accepted", None),
        (1, "rejected", "schema_violation"),
        (2, "accepted", None),
        (3, "rejected", "not_an_object"),
        (4, "rejected", "unknown_type"),
    ]
    assert "event_id" in body["results"][1]["detail"]
    assert [r.event_id for r in harness.publisher.records] == ["e-1", "c-1"]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (deal(occurred_at="2026-06-01T09:00:00"), "schema_violation"),  # no UTC offset
        (deal(occurred_at="2026-06-09T09:00:00Z"), "out_of_range"),  # a week ahead
        (deal(amount=-5), "schema_violation"),
        (deal(manager=""), "schema_violation"),
        (deal(stage="brainstorming"), "unknown_stage"),
        (deal(pipeline="partners"), "unknown_pipeline"),
        ({**call(), "direction": "sideways"}, "schema_violation"),
        ({"type": "deal.created"}, "schema_violation"),
    ],
)
async def test_an_invalid_event_is_422_with_the_workers_reason(
    harness: Harness, event: dict[str, Any], reason: str
) -> None:
    status, body, _ = await harness.post("/v1/events", event)
    assert status == 422
    [result] = body["results"]
    assert (result["status"], result["reason"]) == ("rejected", reason)
    assert result["detail"]
    assert harness.publisher.records == []


async def test_all_invalid_batch_is_422(harness: Harness) -> None:
    status, body, _ = await harness.post("/v1/events", [{"type": "x"}, 5])
    assert (status, body["accepted"], body["rejected"]) == (422, 0, 2)


# -- request-level errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "invalid_json"),
        (b"", "empty_body"),
        (b"42", "not_an_object"),
        (b'"deal"', "not_an_object"),
        (b"[]", "empty_batch"),
        (b'{"amount": NaN}', "invalid_json"),
        (b"\xff\xfe{}", "invalid_encoding"),
        (b"[" * 3000 + b"]" * 3000, "invalid_json"),
    ],
)
async def test_a_body_that_is_not_an_object_or_array_is_400(
    harness: Harness, body: bytes, error: str
) -> None:
    status, answer, _ = await harness.post("/v1/events", body)
    assert (status, answer["error"]) == (400, error)


async def test_too_many_events_is_413(harness: Harness) -> None:
    status, body, _ = await harness.post("/v1/events", [deal(f"e-{i}") for i in range(6)])
    assert (status, body["error"]) == (413, "too_many_events")
    assert harness.publisher.records == []


async def test_wrong_content_type_is_415(harness: Harness) -> None:
    status, body, _ = await harness.post(
        "/v1/events", deal(), headers={"Content-Type": "text/plain"}
    )
    assert (status, body["error"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": ""},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "", "X-Salespulse-Signature": "sha256=" + "0" * 64},
    ],
)
async def test_missing_or_bad_credentials_are_401(
    harness: Harness, headers: dict[str, str]
) -> None:
    status, body, answer_headers = await harness.post("/v1/events", deal(), headers=headers)
    assert (status, body["error"]) == (401, "unauthorized")
    assert answer_headers["WWW-Authenticate"].startswith("Bearer")
    assert harness.publisher.records == []


async def test_a_valid_body_signature_admits_without_a_token(harness: Harness) -> None:
    body = json.dumps(deal()).encode()
    signed = {"Authorization": "", "X-Salespulse-Signature": sign(body, HMAC_SECRET)}
    assert (await harness.post("/v1/events", body, headers=signed))[0] == 202
    tampered = body.replace(b"m-1", b"m-2")
    assert (await harness.post("/v1/events", tampered, headers=signed))[0] == 401


async def test_a_declared_length_over_the_limit_is_413(harness: Harness) -> None:
    big = [deal(f"e-{i}", note="x" * 2000) for i in range(5)]
    status, body, _ = await harness.post("/v1/events", big)
    assert (status, body["error"]) == (413, "body_too_large")


async def test_a_chunked_body_over_the_limit_is_413(harness: Harness) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 4096

    response = await harness.client.post(
        "/v1/events", data=chunks(), headers={"Content-Type": "application/json", **AUTH}
    )
    assert response.status == 413
    assert (await response.json())["error"] == "body_too_large"


async def _raw_request(harness: Harness, head: str, body: bytes) -> bytes:
    """Send *head* and the start of a body, never the rest; the answer's first bytes."""
    server = harness.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head.encode() + b"\r\n\r\n" + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(200), timeout=10)
    finally:
        writer.close()


async def test_413_comes_before_the_body_is_read(harness: Harness) -> None:
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {100 * 1024 * 1024}"
    )
    # 100 MiB announced, 1 KiB sent: the answer must come without waiting for the rest.
    answer = await _raw_request(harness, head, b"[" + b" " * 1023)
    assert answer.startswith(b"HTTP/1.1 413")


async def test_expect_100_continue_is_refused_before_the_body_is_sent(harness: Harness) -> None:
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {LIMIT + 1}\r\nExpect: 100-continue"
    )
    assert (await _raw_request(harness, head, b"")).startswith(b"HTTP/1.1 413")
    unauthorized = head.replace(f"Bearer {TOKEN}", "Bearer nope-nope-nope-nope")
    assert (await _raw_request(harness, unauthorized, b"")).startswith(b"HTTP/1.1 401")
    fine = head.replace(f"Content-Length: {LIMIT + 1}", "Content-Length: 2")
    assert (await _raw_request(harness, fine, b"")).startswith(b"HTTP/1.1 100 Continue")


# -- the broker ---------------------------------------------------------------------------


async def test_no_broker_is_503_with_retry_after_and_nothing_claimed(harness: Harness) -> None:
    harness.publisher.ready = False
    status, body, headers = await harness.post("/v1/events", [deal(), {"type": "x"}])
    assert (status, body["error"]) == (503, "broker_unavailable")
    assert headers["Retry-After"] == "5"
    assert [(r["status"], r["reason"]) for r in body["results"]] == [
        ("rejected", "broker_unavailable"),
        ("rejected", "unknown_type"),
    ]
    assert (await harness.client.get("/readyz")).status == 503


async def test_an_unacknowledged_publish_is_503(harness: Harness) -> None:
    harness.publisher.failure = PublishError("broker_timeout", "not acknowledged within 10s")
    status, body, _ = await harness.post("/v1/events", deal())
    assert (status, body["error"]) == (503, "broker_timeout")
    assert await harness.metric("salespulse_ingest_events_rejected_total", reason="broker_timeout")


# -- adapters ----------------------------------------------------------------------------


async def test_amocrm_with_the_token_in_the_url(harness: Harness) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": ""}
    body = fixture("amocrm/lead_status.txt")
    status, answer, _ = await harness.post(
        "/v1/webhooks/amocrm", body, headers=form, params={"token": TOKEN}
    )
    assert (status, answer["accepted"]) == (202, 2)
    assert {r.key for r in harness.publisher.records} == {b"m-017", b"m-018"}
    no_token = await harness.post("/v1/webhooks/amocrm", body, headers=form)
    assert no_token[0] == 401
    as_json = await harness.post("/v1/webhooks/amocrm", body, params={"token": TOKEN})
    assert as_json[0] == 415


async def test_amocrm_partly_unmapped_is_422_when_nothing_is_accepted(harness: Harness) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer, _ = await harness.post(
        "/v1/webhooks/amocrm", fixture("amocrm/unmapped.txt"), headers=form
    )
    assert (status, answer["rejected"], answer["ignored"]) == (422, 2, 1)


async def test_hubspot_with_its_v3_signature(harness: Harness) -> None:
    body = fixture("hubspot/deal_notifications.json")
    url = str(harness.client.make_url("/v1/webhooks/hubspot"))

    def signed(timestamp: int) -> dict[str, str]:
        return {
            "Authorization": "",
            "X-HubSpot-Signature-v3": hubspot_sign(
                "POST", url, body, str(timestamp), HUBSPOT_SECRET
            ),
            "X-HubSpot-Request-Timestamp": str(timestamp),
        }

    now_ms = int(time.time() * 1000)
    status, answer, _ = await harness.post("/v1/webhooks/hubspot", body, headers=signed(now_ms))
    assert (status, answer["accepted"], answer["ignored"]) == (202, 3, 2)
    stale = await harness.post(
        "/v1/webhooks/hubspot", body, headers=signed(now_ms - 10 * 60 * 1000)
    )
    assert stale[0] == 401


async def test_pipedrive_with_basic_auth(harness: Harness) -> None:
    basic = base64.b64encode(f"pipedrive:{TOKEN}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    status, answer, _ = await harness.post(
        "/v1/webhooks/pipedrive", fixture("pipedrive/deal_won.json"), headers=headers
    )
    assert (status, answer["results"][0]["type"]) == (202, "deal.stage_changed")
    wrong = base64.b64encode(b"pipedrive:not-the-token-at-all").decode()
    denied = await harness.post(
        "/v1/webhooks/pipedrive",
        fixture("pipedrive/deal_won.json"),
        headers={"Authorization": f"Basic {wrong}"},
    )
    assert denied[0] == 401


async def test_only_ignored_notifications_are_200_and_publish_nothing(harness: Harness) -> None:
    status, answer, _ = await harness.post(
        "/v1/webhooks/pipedrive", fixture("pipedrive/deal_delete.json")
    )
    assert (status, answer["ignored"], answer["accepted"]) == (200, 1, 0)
    assert harness.publisher.records == []


async def test_an_adapter_without_mapping_is_404() -> None:
    gateway = Gateway(Settings(), ingest_settings(), FakePublisher(), CollectorRegistry(), {})
    async with TestClient(TestServer(gateway.app())) as client:
        response = await client.post("/v1/webhooks/hubspot", data=b"[]", headers=AUTH)
        assert response.status == 404
        assert (await response.json())["error"] == "adapter_not_configured"


# -- operations -----------------------------------------------------------------------------


async def test_metrics_count_requests_and_events(harness: Harness) -> None:
    await harness.post("/v1/events", [deal(), {"type": "x"}])
    await harness.post("/v1/events", deal(), headers={"Authorization": ""})
    await harness.post("/v1/events", call())
    assert await harness.metric("salespulse_ingest_requests_total", endpoint="events", code="207")
    assert await harness.metric("salespulse_ingest_requests_total", endpoint="events", code="401")
    assert await harness.metric("salespulse_ingest_requests_total", endpoint="events", code="202")
    assert await harness.metric("salespulse_ingest_events_accepted_total", type="deal.created") == 1
    assert await harness.metric("salespulse_ingest_events_rejected_total", reason="unknown_type")
    assert await harness.metric("salespulse_ingest_publish_seconds_count") == 2
    assert await harness.metric("salespulse_ingest_broker_connected") == 1


async def test_health_readiness_and_openapi(harness: Harness) -> None:
    assert (await harness.client.get("/healthz")).status == 200
    assert (await harness.client.get("/readyz")).status == 200
    spec = await (await harness.client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    schemas = spec["components"]["schemas"]
    for model in ("DealCreated", "DealStageChanged", "TaskCreated", "CallEnded", "Event"):
        assert model in schemas
    assert schemas["EventBatch"]["maxItems"] == 5
    post = spec["paths"]["/v1/events"]["post"]
    assert {"202", "207", "400", "401", "413", "415", "422", "503"} <= set(post["responses"])
    for path in ("/v1/webhooks/amocrm", "/v1/webhooks/hubspot", "/v1/webhooks/pipedrive"):
        assert "200" in spec["paths"][path]["post"]["responses"]


def documented_events(path: Path) -> list[str]:
    """The JSON bodies of the ``curl ... /v1/events`` examples in a Markdown file."""
    blocks = re.findall(r"```sh\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)
    return [
        body
        for block in blocks
        if "curl" in block and "/v1/events" in block
        for body in re.findall(r"-d '(.*?)'", block, re.DOTALL)
    ]


@pytest.mark.parametrize("document", ["README.md", "docs/ingest.md"])
async def test_the_documented_example_event_is_accepted(harness: Harness, document: str) -> None:
    [body] = documented_events(REPO / document)
    status, answer, _ = await harness.post("/v1/events", body.encode())
    assert status == 202, answer
    assert answer["accepted"] == 1
    [record] = harness.publisher.records
    assert (record.topic, record.key) == ("crm.deals", b"anna-petrova")
