"""The ingest gateway against a real (embedded) broker.

What a 202 promises is checked where it matters: every event answered 202 is
read back from its topic, also when the broker stalls (SIGSTOP) with requests
in flight; a request the gateway gave up on got 503.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from salespulse.broker import EmbeddedBroker, free_port
from salespulse.ingest.auth import hubspot_sign
from salespulse.settings import Settings
from tests.support.bad_messages import read_all
from tests.support.ingest import (
    HUBSPOT_SECRET,
    MAPPINGS,
    TOKEN,
    GatewayThread,
    fixture,
    ingest_settings,
    read_event_ids,
)
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, parse, scrape, total

pytestmark = pytest.mark.integration

TOPICS = ("crm.deals", "crm.tasks", "crm.calls")
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def post(
    url: str, body: bytes | Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **AUTH, **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def now_iso(offset_minutes: int = 0) -> str:
    return (datetime.now(UTC) - timedelta(minutes=offset_minutes)).isoformat()


def batch(tag: str, manager: str = "m-1") -> list[dict[str, Any]]:
    """One event of each topic family, with ids unique to *tag*."""
    return [
        {
            "event_id": f"{tag}-deal",
            "type": "deal.created",
            "occurred_at": now_iso(30),
            "manager_id": manager,
            "deal_id": f"D-{tag}",
            "stage": "lead",
            "amount": 1000,
        },
        {
            "event_id": f"{tag}-task",
            "type": "task.created",
            "occurred_at": now_iso(20),
            "manager_id": manager,
            "task_id": f"T-{tag}",
            "task_type": "call",
            "due_at": now_iso(-120),
            "deal_id": f"D-{tag}",
        },
        {
            "event_id": f"{tag}-call",
            "type": "call.ended",
            "occurred_at": now_iso(10),
            "manager_id": manager,
            "call_id": f"C-{tag}",
            "direction": "inbound",
            "duration_seconds": 95,
        },
    ]


@pytest.fixture
def gateway(broker: EmbeddedBroker) -> Iterator[GatewayThread]:
    with GatewayThread(Settings(broker=broker.url), ingest_settings()) as running:
        yield running


def test_accepted_events_are_in_their_topics_keyed_by_manager(
    broker: EmbeddedBroker, gateway: GatewayThread
) -> None:
    events = batch("a1", "m-1") + batch("a2", "m-2")
    status, body, _ = post(gateway.url + "/v1/events", events)
    assert (status, body["accepted"]) == (202, 6)
    found = read_event_ids(broker.bootstrap, TOPICS, [e["event_id"] for e in events])
    for event in events:
        record = found[event["event_id"]]
        assert record.topic == f"crm.{event['type'].split('.')[0]}s"
        assert record.key == event["manager_id"].encode()
        assert json.loads(record.value) == event


def test_a_partial_batch_publishes_exactly_its_valid_events(
    broker: EmbeddedBroker, gateway: GatewayThread
) -> None:
    good = batch("p1")
    bad = [
        {**good[0], "event_id": "p1-naive", "occurred_at": "2026-01-01T10:00:00"},
        {**good[0], "event_id": "p1-future", "occurred_at": now_iso(-3 * 24 * 60)},
        {**good[0], "event_id": "p1-stage", "stage": "brainstorming"},
    ]
    status, body, _ = post(gateway.url + "/v1/events", [bad[0], *good, bad[1], bad[2]])
    assert status == 207
    assert [(r["event_id"], r["status"], r.get("reason")) for r in body["results"]] == [
        ("p1-naive", "rejected", "schema_violation"),
        ("p1-deal", "accepted", None),
        ("p1-task", "accepted", None),
        ("p1-call", "accepted", None),
        ("p1-future", "rejected", "out_of_range"),
        ("p1-stage", "rejected", "unknown_stage"),
    ]
    # Read each topic to its true end (a sentinel record): the rejected ones never got there.
    records = [record for topic in TOPICS for record in read_all(broker.bootstrap, topic)]
    ids = {json.loads(record.value)["event_id"] for record in records}
    assert ids == {"p1-deal", "p1-task", "p1-call"}


def test_each_adapter_publishes_its_translated_webhook(
    broker: EmbeddedBroker, gateway: GatewayThread
) -> None:
    amo = post(
        gateway.url + "/v1/webhooks/amocrm?token=" + TOKEN,
        fixture("amocrm/lead_status.txt"),
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": ""},
    )
    hubspot_body = fixture("hubspot/deal_notifications.json")
    url = gateway.url + "/v1/webhooks/hubspot"
    timestamp = str(int(time.time() * 1000))
    hub = post(
        url,
        hubspot_body,
        {
            "Authorization": "",
            "X-HubSpot-Signature-v3": hubspot_sign(
                "POST", url, hubspot_body, timestamp, HUBSPOT_SECRET
            ),
            "X-HubSpot-Request-Timestamp": timestamp,
        },
    )
    basic = base64.b64encode(f"pipedrive:{TOKEN}".encode()).decode()
    pipe = post(
        gateway.url + "/v1/webhooks/pipedrive",
        fixture("pipedrive/deal_stage_change.json"),
        {"Authorization": f"Basic {basic}"},
    )
    assert [answer[0] for answer in (amo, hub, pipe)] == [202, 202, 202]
    accepted = [
        result["event_id"]
        for answer in (amo, hub, pipe)
        for result in answer[1]["results"]
        if result["status"] == "accepted"
    ]
    assert len(accepted) == 2 + 3 + 1
    found = read_event_ids(broker.bootstrap, TOPICS, accepted)
    assert {found[i].key for i in accepted} == {b"m-017", b"m-018"}
    assert {json.loads(found[i].value)["source"] for i in accepted} == {
        "amocrm",
        "hubspot",
        "pipedrive",
    }


def test_the_worker_counts_what_the_gateway_publishes_once(
    broker: EmbeddedBroker, gateway: GatewayThread, worker: WorkerProcess
) -> None:
    amocrm = gateway.url + "/v1/webhooks/amocrm"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert post(amocrm, fixture("amocrm/lead_add.txt"), form)[0] == 202
    # The same webhook again, as amoCRM retries it: the same event id, counted once.
    assert post(amocrm, fixture("amocrm/lead_add.txt"), form)[0] == 202
    pipedrive = gateway.url + "/v1/webhooks/pipedrive"
    assert post(pipedrive, fixture("pipedrive/deal_create.json"))[0] == 202
    worker.start().wait_ready()

    def counted() -> Samples | None:
        samples = scrape(worker.metrics_port)
        return samples if total(samples, "salespulse_events_total") >= 3 else None

    samples = wait_for(counted, timeout=90, what="the worker to consume the gateway's events")
    assert total(samples, "salespulse_events_total", outcome="rejected") == 0
    assert total(samples, "salespulse_events_total", outcome="duplicate") == 1
    assert total(samples, "salespulse_deals_created_total", manager="m-017") == 2


# -- a broker that stalls, and one that is not there ------------------------------------


@dataclass
class Sender:
    """Posts batches back to back to one gateway, recording every answer."""

    gateway: GatewayThread
    name: str
    answers: list[tuple[int, list[str], dict[str, str]]] = field(default_factory=list)

    async def run(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set() and n < 500:
            n += 1
            events = batch(f"{self.name}-{n}-{uuid.uuid4().hex[:8]}", f"m-{n % 7}")
            async with session.post(
                self.gateway.url + "/v1/events", json=events, headers=AUTH
            ) as response:
                await response.read()
                self.answers.append(
                    (response.status, [e["event_id"] for e in events], dict(response.headers))
                )

    def count(self, status: int) -> int:
        return sum(1 for answer in self.answers if answer[0] == status)


async def _metric(session: aiohttp.ClientSession, gateway: GatewayThread, name: str) -> float:
    async with session.get(gateway.url + "/metrics") as response:
        return total(parse(await response.text()), name)


async def _until(probe: Any, what: str, within: float = 60.0) -> None:
    """Await *probe()* until truthy; each probe is a real round trip, not a timed sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await probe():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def stall_the_broker_under_two_gateways(broker: EmbeddedBroker) -> None:
    """The broker is stopped (SIGSTOP) while two gateways send back to back.

    Defined behaviour: a request waits up to publish_timeout_seconds for the
    broker. The impatient gateway (2 s) answers 503 while the broker is
    stopped; the patient one (60 s) holds its request and answers 202 once
    the broker is back. Every event answered 202 must then be in its topic.
    """
    assert broker.process is not None
    settings = Settings(broker=broker.url)
    impatient = GatewayThread(settings, ingest_settings(publish_timeout_seconds=2)).start()
    patient = GatewayThread(settings, ingest_settings(publish_timeout_seconds=60)).start()
    senders = [Sender(impatient, "imp"), Sender(patient, "pat")]
    pid = broker.process.pid

    async def scenario() -> None:
        stop = asyncio.Event()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            tasks = [asyncio.create_task(s.run(session, stop)) for s in senders]

            async def flowing() -> bool:
                return all(s.count(202) >= 3 for s in senders)

            await _until(flowing, "both gateways to get 202s")
            os.kill(pid, signal.SIGSTOP)
            try:
                stalled_at = [len(s.answers) for s in senders]

                async def impatient_gave_up() -> bool:
                    return senders[0].count(503) >= 2

                async def patient_waiting() -> bool:
                    held = await _metric(
                        session, patient, "salespulse_ingest_publish_in_flight_events"
                    )
                    return held > 0

                await _until(impatient_gave_up, "the impatient gateway to answer 503")
                await _until(patient_waiting, "the patient gateway to hold a request")
                # While stopped, the patient gateway answered nothing it could not confirm.
                assert senders[1].answers[stalled_at[1] + 1 :] == []
            finally:
                os.kill(pid, signal.SIGCONT)
            resumed_at = [len(s.answers) for s in senders]

            async def recovered() -> bool:
                return all(s.count(202) >= n + 3 for s, n in zip(senders, resumed_at, strict=True))

            await _until(recovered, "both gateways to get 202s again", within=90)
            stop.set()
            await asyncio.gather(*tasks)

    try:
        asyncio.run(scenario())
    finally:
        os.kill(pid, signal.SIGCONT)
        impatient.stop()
        patient.stop()

    impatient_sender, patient_sender = senders
    for sender in senders:
        statuses = {answer[0] for answer in sender.answers}
        assert statuses <= {202, 503}, statuses
    assert patient_sender.count(503) == 0
    unavailable = [a for a in impatient_sender.answers if a[0] == 503]
    assert unavailable
    assert all(a[2].get("Retry-After") for a in unavailable)
    confirmed = [i for sender in senders for a in sender.answers if a[0] == 202 for i in a[1]]
    read_event_ids(broker.bootstrap, TOPICS, confirmed, timeout=90)


def test_nothing_answered_202_is_lost_when_the_broker_stalls(broker: EmbeddedBroker) -> None:
    stall_the_broker_under_two_gateways(broker)


def test_without_a_broker_every_post_is_503_until_it_comes(tmp_path: Any) -> None:
    port = free_port()
    settings = Settings(broker=f"kafka://127.0.0.1:{port}")
    gateway = GatewayThread(settings, ingest_settings()).start(wait_connected=None)
    try:
        status, body, headers = post(gateway.url + "/v1/events", batch("nb"))
        assert (status, body["error"], headers["Retry-After"]) == (503, "broker_unavailable", "5")
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(gateway.url + "/readyz", timeout=5)
        assert not_ready.value.code == 503
        with EmbeddedBroker(port=port, log=tmp_path / "late-broker.log") as late:
            connected = asyncio.run_coroutine_threadsafe(
                gateway.running.publisher.wait_connected(90), gateway.loop
            ).result(95)
            assert connected
            events = batch("late")
            assert post(gateway.url + "/v1/events", events)[0] == 202
            read_event_ids(late.bootstrap, TOPICS, [e["event_id"] for e in events])
    finally:
        gateway.stop()


def test_the_command_serves_until_sigterm(broker: EmbeddedBroker, tmp_path: Any) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env.update(
        SALESPULSE_BROKER=broker.url,
        SALESPULSE_INGEST_HOST="127.0.0.1",
        SALESPULSE_INGEST_PORT=str(port),
        SALESPULSE_INGEST_TOKENS=TOKEN,
        SALESPULSE_INGEST_PIPEDRIVE_MAPPING=str(MAPPINGS / "pipedrive.example.toml"),
    )
    log = tmp_path / "ingest.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "salespulse.ingest"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert process.poll() is None, log.read_text()
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                return bool(response.status == 200)

        wait_for(ready, timeout=60, what="the ingest command to be ready")
        events = batch("cmd")
        assert post(url + "/v1/events", events)[0] == 202
        assert post(url + "/v1/webhooks/pipedrive", fixture("pipedrive/deal_won.json"))[0] == 202
        assert post(url + "/v1/webhooks/hubspot", b"[]")[0] == 404  # no mapping configured
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    read_event_ids(broker.bootstrap, TOPICS, [e["event_id"] for e in events])


# -- the OpenAPI description, exercised by schemathesis -----------------------------------


@pytest.fixture
def api_schema(broker: EmbeddedBroker) -> Iterator[schemathesis.BaseSchema]:
    with GatewayThread(Settings(broker=broker.url), ingest_settings()) as running:
        schema = schemathesis.openapi.from_url(running.url + "/openapi.json")
        schema.config.update(base_url=running.url)
        yield schema


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


def test_the_api_answers_every_generated_request_as_described(
    api_schema: schemathesis.BaseSchema,
) -> None:
    """Valid and invalid requests for every operation: no 5xx, every answer as described."""
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert {operation.path for operation in operations} >= {
        "/v1/events",
        "/v1/webhooks/amocrm",
        "/v1/webhooks/hubspot",
        "/v1/webhooks/pipedrive",
    }
    for operation in operations:
        # GETs take no input that could be made invalid: positive requests only.
        modes = [GenerationMode.POSITIVE]
        if operation.method.upper() == "POST":
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=30,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def exercise(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(headers=AUTH, checks=CHECKS)

            exercise()
