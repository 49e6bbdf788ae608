"""The shared Kafka producer helper against real sockets: a port where nothing
listens, one that accepts but never answers, and the embedded broker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from salespulse.broker import EmbeddedBroker, free_port
from salespulse.kafka_client import (
    BrokerUnreachableError,
    Message,
    NotAcknowledgedError,
    ProducerOptions,
    connect_producer,
    send_all,
)
from salespulse.settings import Settings
from salespulse.topics import BrokerUnavailableError, ensure_topics
from tests.support.bad_messages import read_all

DEADLINE = 2.0
SLACK = 1.0  # what giving up may take beyond the deadline: cancelling and closing one attempt
OPTIONS = ProducerOptions(client_id="salespulse-test")
TOPIC = Settings().topic_deals


def nobody_listens() -> Settings:
    return Settings(broker=f"kafka://127.0.0.1:{free_port()}")


def failed_attempts(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "salespulse.kafka_client" and "not reachable" in record.getMessage()
    ]


async def until(probe: Callable[[], object], what: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class SilentListener:
    port: int
    accepted: list[asyncio.StreamWriter]

    @property
    def settings(self) -> Settings:
        return Settings(broker=f"kafka://127.0.0.1:{self.port}")


@asynccontextmanager
async def silent_listener() -> AsyncIterator[SilentListener]:
    """A port that accepts connections and never says a word, like a hung broker."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield SilentListener(int(server.sockets[0].getsockname()[1]), accepted)
    finally:
        server.close()
        for writer in accepted:
            writer.close()
        await server.wait_closed()


async def test_an_absent_broker_is_given_up_on_at_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = nobody_listens()
    assert settings.broker is not None
    where = settings.broker.removeprefix("kafka://")
    caplog.set_level(logging.WARNING, logger="salespulse.kafka_client")
    began = time.monotonic()
    with pytest.raises(BrokerUnreachableError) as caught:
        await connect_producer(settings, OPTIONS, deadline_seconds=DEADLINE)
    took = time.monotonic() - began
    assert DEADLINE <= took < DEADLINE + SLACK
    assert str(caught.value).startswith(f"the broker at {where} did not answer within 2 s: ")
    assert "Unable to bootstrap" in str(caught.value)  # the last attempt's error
    attempts = failed_attempts(caplog)
    assert len(attempts) >= 2  # pauses of 0.5 s and 1 s fit into the deadline
    assert attempts[0].startswith(f"broker {where} not reachable (attempt 1: ")
    assert attempts[0].endswith("; retrying")


async def test_an_attempt_that_hangs_is_cut_off_at_the_deadline() -> None:
    async with silent_listener() as listener:
        began = time.monotonic()
        with pytest.raises(BrokerUnreachableError, match="did not answer within 2 s"):
            await connect_producer(listener.settings, OPTIONS, deadline_seconds=DEADLINE)
        took = time.monotonic() - began
        assert listener.accepted  # the attempt got as far as a connection
    # aiokafka alone would wait its request timeout (40 s) for the first answer.
    assert DEADLINE <= took < DEADLINE + SLACK


async def seconds_to_stop(settings: Settings, under_way: Callable[[], object]) -> float:
    """How long connecting takes to end once its stop event is set, set when *under_way*."""
    stop = asyncio.Event()
    connecting = asyncio.create_task(
        connect_producer(settings, OPTIONS, deadline_seconds=None, stop=stop)
    )
    await until(under_way, "connecting to be under way")
    stopped_at = time.monotonic()
    stop.set()
    async with asyncio.timeout(5):
        assert await connecting is None
    return time.monotonic() - stopped_at


async def test_a_stop_event_ends_the_retries_promptly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="salespulse.kafka_client")
    assert await seconds_to_stop(nobody_listens(), lambda: failed_attempts(caplog)) < 0.5


async def test_a_stop_event_ends_an_attempt_that_hangs() -> None:
    async with silent_listener() as listener:
        assert await seconds_to_stop(listener.settings, lambda: listener.accepted) < 0.5


def send_through_the_embedded_broker(broker: EmbeddedBroker, messages: list[Message]) -> int:
    """:func:`send_all` through a producer connected as the publishers connect theirs."""
    settings = Settings(broker=broker.url)

    async def produce() -> int:
        await ensure_topics(settings)
        producer = await connect_producer(settings, OPTIONS, deadline_seconds=30)
        assert producer is not None
        try:
            return await send_all(producer, messages)
        finally:
            await producer.stop()

    return asyncio.run(produce())


def test_a_record_sent_to_the_embedded_broker_is_acknowledged(broker: EmbeddedBroker) -> None:
    assert send_through_the_embedded_broker(broker, [(TOPIC, b"m-1", b'{"n":1}')]) == 1
    [record] = read_all(broker.bootstrap, TOPIC)
    assert (record.key, record.value) == (b"m-1", b'{"n":1}')


def test_a_refused_message_is_reported_with_how_many_were_acknowledged(
    broker: EmbeddedBroker,
) -> None:
    """The producer refuses a record over its request size after two were sent: those
    two are on the broker, and the error says so."""
    too_large = b"x" * (2 * 1024 * 1024)
    with pytest.raises(NotAcknowledgedError) as caught:
        send_through_the_embedded_broker(
            broker,
            [(TOPIC, b"m-1", b"first"), (TOPIC, b"m-2", b"second"), (TOPIC, b"m-1", too_large)],
        )
    error = caught.value
    assert (error.acknowledged, error.sent) == (2, 2)
    assert isinstance(error.error, MessageSizeTooLargeError)
    assert str(error).startswith("2 of 2 messages acknowledged; then: ")
    assert sorted(record.value for record in read_all(broker.bootstrap, TOPIC)) == [
        b"first",
        b"second",
    ]


@pytest.mark.parametrize("who", ["worker", "publisher"])
async def test_an_absent_broker_gets_one_line_per_attempt(
    who: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker creating its topics and a publisher connecting: each failed attempt is
    one warning of ours, not also the client library's error for the same attempt."""
    caplog.set_level(logging.DEBUG)
    settings = nobody_listens().model_copy(update={"startup_timeout_seconds": DEADLINE})
    if who == "worker":
        with pytest.raises(BrokerUnavailableError):
            await ensure_topics(settings)
    else:
        with pytest.raises(BrokerUnreachableError):
            await connect_producer(settings, OPTIONS, deadline_seconds=DEADLINE)
    shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
    ours = [r for r in shown if r.name.startswith("salespulse.")]
    assert len(ours) >= 2  # pauses of 0.5 s and 1 s fit into the deadline
    assert all("not reachable" in r.getMessage() for r in ours)
    assert [r.getMessage() for r in shown if r not in ours] == []
    # Once started, the client library's errors are its own again.
    logging.getLogger("aiokafka").error('Unable connect to "x:1": refused')
    assert caplog.records[-1].getMessage() == 'Unable connect to "x:1": refused'
