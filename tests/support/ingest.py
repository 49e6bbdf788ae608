"""The ingest gateway under test: in memory, or on a port beside a real broker."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from salespulse.broker import free_port
from salespulse.ingest.adapters import Adapter, load_mapping
from salespulse.ingest.amocrm import AmoCrmAdapter, AmoMapping
from salespulse.ingest.config import IngestSettings
from salespulse.ingest.hubspot import HubSpotAdapter, HubSpotMapping
from salespulse.ingest.pipedrive import PipedriveAdapter, PipedriveMapping
from salespulse.ingest.publisher import PublishError
from salespulse.ingest.server import RunningGateway
from salespulse.ingest.validation import Record
from salespulse.settings import Settings
from tests.support.kafka import seek_to_start

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "webhooks"
MAPPINGS = REPO / "salespulse" / "ingest" / "mappings"
TOKEN = "test-token-0123456789abcdef"
HMAC_SECRET = "test-hmac-secret-0123456789"
HUBSPOT_SECRET = "hubspot-client-secret-0123456789"


def ingest_settings(**overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "tokens": TOKEN,
        "hmac_secret": HMAC_SECRET,
        "hubspot_client_secret": HUBSPOT_SECRET,
        **overrides,
    }
    return IngestSettings(**values)


def sample_adapters() -> dict[str, Adapter]:
    """The three adapters with the shipped example mappings (which the fixtures match)."""
    return {
        "amocrm": AmoCrmAdapter(load_mapping(MAPPINGS / "amocrm.example.toml", AmoMapping)),
        "hubspot": HubSpotAdapter(load_mapping(MAPPINGS / "hubspot.example.toml", HubSpotMapping)),
        "pipedrive": PipedriveAdapter(
            load_mapping(MAPPINGS / "pipedrive.example.toml", PipedriveMapping)
        ),
    }


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakePublisher:
    """Keeps what it is given; can be made unready, failing, or held until released."""

    def __init__(self) -> None:
        self.ready = True
        self.records: list[Record] = []
        self.failure: PublishError | None = None

    async def publish(self, records: Sequence[Record], within: float) -> None:
        if not self.ready:
            raise PublishError("broker_unavailable", "not connected to the broker yet")
        if self.failure is not None:
            raise self.failure
        self.records.extend(records)


class GatewayThread:
    """A RunningGateway on its own event loop in a thread, on 127.0.0.1."""

    def __init__(
        self,
        settings: Settings,
        ingest: IngestSettings,
        *,
        adapters: Mapping[str, Adapter] | None = None,
    ) -> None:
        self.ingest = ingest
        self.registry = CollectorRegistry()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.running = RunningGateway(
            settings,
            ingest,
            registry=self.registry,
            adapters=adapters if adapters is not None else sample_adapters(),
        )

    @property
    def url(self) -> str:
        return f"http://{self.ingest.host}:{self.ingest.port}"

    def start(self, *, wait_connected: float | None = 60.0) -> GatewayThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.running.start(), self.loop).result(30)
        if wait_connected is not None:
            connected = asyncio.run_coroutine_threadsafe(
                self.running.publisher.wait_connected(wait_connected), self.loop
            ).result(wait_connected + 5)
            assert connected, f"the gateway did not connect within {wait_connected}s"
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.running.stop(), self.loop).result(90)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_event_ids(
    bootstrap: str, topics: Iterable[str], wanted: Iterable[str], timeout: float = 60.0
) -> dict[str, Any]:
    """Records of *topics* by event_id, read from offset 0 until every *wanted* id is found.

    Reads by content, not to reported end offsets (which the embedded broker gets
    wrong for multi-record batches), and from offset 0, not from the broker's
    reported earliest offset (see tests.support.kafka.seek_to_start); raises when
    the deadline passes first.
    """
    missing = set(wanted)
    topic_list = list(topics)

    async def run() -> dict[str, Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        found: dict[str, Any] = {}
        try:
            partitions: list[TopicPartition] = []
            for topic in topic_list:
                known = consumer.partitions_for_topic(topic)
                if not known:
                    await consumer._client.force_metadata_update()
                    known = consumer.partitions_for_topic(topic) or set()
                partitions.extend(TopicPartition(topic, p) for p in sorted(known))
            consumer.assign(partitions)
            seek_to_start(consumer)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while missing and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        if record.value is None:
                            continue
                        event_id = json.loads(record.value).get("event_id")
                        found.setdefault(event_id, record)
                        missing.discard(event_id)
        finally:
            await consumer.stop()
        if missing:
            raise AssertionError(f"{len(missing)} events not found in {topic_list}: {missing}")
        return found

    return asyncio.run(run())
