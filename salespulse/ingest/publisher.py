"""Publishing accepted events and waiting for the broker's acknowledgement.

The gateway answers 202 only once every record of a request is acknowledged
by all in-sync replicas (``acks=all``). A record not acknowledged within
``publish_timeout_seconds`` makes the request fail with 503: the client
repeats it, and since a record may still have landed, the repeat is harmless
only because event ids dedupe in the worker. The producer is idempotent when
the broker grants it (``idempotence=auto``); the embedded tansu broker does
not, and then broker-side retries may write a record twice, which the same
dedupe absorbs. That refusal is said once, as a warning with its reason:
aiokafka's own ERROR for the refused InitProducerId request is dropped, since
the gateway goes on without idempotence and nothing is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    UnknownError,
    UnsupportedVersionError,
)

from salespulse.ingest.config import IngestSettings
from salespulse.ingest.validation import Record
from salespulse.kafka_client import ProducerOptions, keep_trying, new_producer, started
from salespulse.settings import Settings
from salespulse.topics import (
    BrokerUnavailableError,
    bootstrap_servers,
    dropping_logs,
    ensure_topics,
)

log = logging.getLogger(__name__)

CLIENT_ID = "salespulse-ingest"
# What a broker answers to InitProducerId when it does not grant idempotent producers.
_NO_IDEMPOTENCE = (UnknownError, UnsupportedVersionError, ClusterAuthorizationFailedError)


class PublishError(Exception):
    """The records could not be confirmed; the request must be answered 503."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Publisher(Protocol):
    @property
    def ready(self) -> bool:
        """Whether a producer is connected (for /readyz)."""
        ...

    async def publish(self, records: Sequence[Record], within: float) -> None:
        """Return once every record is acknowledged; raise PublishError otherwise."""
        ...


class KafkaPublisher:
    """An aiokafka producer, connected in the background and kept for the process's life."""

    def __init__(self, settings: Settings, ingest: IngestSettings) -> None:
        if settings.broker is None:
            raise ValueError("the gateway needs a broker: set SALESPULSE_BROKER or --broker")
        self.settings = settings
        self.ingest = ingest
        self.servers = bootstrap_servers(settings.broker)
        self.idempotent: bool | None = None
        self._producer: Any | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect in the background; until then publish() fails with broker_unavailable."""
        self._task = asyncio.create_task(self._connect(), name="ingest-producer-connect")

    async def wait_connected(self, within: float) -> bool:
        try:
            async with asyncio.timeout(within):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()  # flushes what is still buffered

    def _new_producer(self, idempotent: bool) -> Any:
        return new_producer(
            self.settings,
            ProducerOptions(CLIENT_ID, self.ingest.linger_ms, enable_idempotence=idempotent),
        )

    async def _start_producer(self) -> Any:
        mode = self.ingest.idempotence
        if mode != "off":
            try:
                with _quiet_init_producer_id(mode):
                    producer = await started(self._new_producer(True))
            except _NO_IDEMPOTENCE as exc:
                if mode == "on":
                    raise
                log.warning(
                    "the broker does not grant idempotent producers (InitProducerId answered "
                    "%s; the embedded tansu broker never does); publishing with acks=all "
                    "without idempotence (a retried record may land twice, which event ids "
                    "dedupe)",
                    type(exc).__name__,
                )
            else:
                self.idempotent = True
                return producer
        producer = await started(self._new_producer(False))
        self.idempotent = False
        return producer

    async def _connect(self) -> None:
        producer = await keep_trying(
            self._connect_once,
            where=",".join(self.servers),
            deadline_seconds=None,
            retry_on=(KafkaError, OSError, BrokerUnavailableError),
            meanwhile="answering 503 and retrying",
        )
        self._producer = producer
        self._connected.set()
        log.info(
            "publishing to %s (acks=all, idempotent=%s)", ",".join(self.servers), self.idempotent
        )

    async def _connect_once(self) -> Any:
        await ensure_topics(self.settings)
        producer = await self._start_producer()
        try:
            # Learn every topic's partitions now, so no request waits for metadata.
            for topic in self.settings.source_topics:
                await producer.partitions_for(topic)
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def publish(self, records: Sequence[Record], within: float) -> None:
        producer = self._producer
        if producer is None:
            raise PublishError("broker_unavailable", "not connected to the broker yet; retry later")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        futures: list[asyncio.Future[Any]] = []
        try:
            async with asyncio.timeout_at(deadline):
                for record in records:
                    futures.append(
                        await producer.send(record.topic, value=record.value, key=record.key)
                    )
        except TimeoutError:
            raise PublishError(
                "broker_timeout", f"the broker took more than {within:g}s to take the events"
            ) from None
        except KafkaError as exc:
            raise PublishError("broker_error", f"the broker refused the events: {exc}") from None
        # asyncio.wait never cancels the delivery futures: the producer keeps them.
        done, pending = await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
        if pending:
            raise PublishError(
                "broker_timeout",
                f"{len(pending)} of {len(futures)} events were not acknowledged within {within:g}s",
            )
        for future in done:
            error = future.exception()
            if error is not None:
                raise PublishError("broker_error", f"the broker refused an event: {error}")


def _quiet_init_producer_id(mode: str) -> contextlib.AbstractContextManager[None]:
    """With ``idempotence=auto``, a refused InitProducerId is expected and answered by
    our one warning; aiokafka's sender would log it as an ERROR first. With ``on`` the
    refusal is an error and stays one."""
    if mode != "auto":
        return contextlib.nullcontext()
    return dropping_logs(
        "aiokafka.producer.sender", lambda message: "during InitProducerIdRequest" in message
    )
