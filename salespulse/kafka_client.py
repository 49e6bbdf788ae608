"""Producing to Kafka the one way every publisher of salespulse does it.

The importer, the simulator and the HTTP gateway all put CRM events on the
broker for the worker, so they share what the contract asks of a producer
(``acks=all``: an event counts once every in-sync replica has it), the
security settings, and how to wait for a broker that is not up yet: retry
with a growing pause and one clear log line per failed attempt, until a
deadline (a command run by hand should give up and say why) or a stop event
(Ctrl-C), or for ever (a long-running gateway outlives broker restarts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from salespulse.kafka_security import client_options
from salespulse.settings import Settings
from salespulse.topics import bootstrap_servers, quiet_bootstrap

log = logging.getLogger(__name__)

T = TypeVar("T")

ACKS = "all"
FIRST_PAUSE_SECONDS = 0.5  # after the first failed attempt; each later one waits this much longer
LONGEST_PAUSE_SECONDS = 5.0
Message = tuple[str, bytes | None, bytes]  # topic, key, value


class BrokerUnreachableError(RuntimeError):
    """No attempt to reach the broker succeeded before the deadline."""


class NotAcknowledgedError(RuntimeError):
    """The broker refused a message or did not acknowledge one.

    ``acknowledged`` is how many of the messages sent were acknowledged all the
    same: a caller reporting progress can count them as published.
    """

    def __init__(self, acknowledged: int, sent: int, error: BaseException) -> None:
        super().__init__(f"{acknowledged} of {sent} messages acknowledged; then: {error}")
        self.acknowledged = acknowledged
        self.sent = sent
        self.error = error


@dataclass(frozen=True)
class ProducerOptions:
    """What a publisher chooses for its producer; acks and security are not its choice."""

    client_id: str
    linger_ms: int = 0  # how long a record may wait for others to share its batch
    enable_idempotence: bool = False  # the embedded broker refuses idempotent producers


def new_producer(settings: Settings, options: ProducerOptions) -> Any:
    """An unstarted producer for ``settings.broker`` with the contract's ``acks=all``."""
    assert settings.broker, "the broker is resolved before a producer is built"
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings.broker),
        client_id=options.client_id,
        acks=ACKS,
        linger_ms=options.linger_ms,
        enable_idempotence=options.enable_idempotence,
        **client_options(settings),
    )


async def started(producer: Any) -> Any:
    """*producer*, started; when starting fails or is cancelled, its connections are
    closed before the error goes on, so a retry loop leaks nothing."""
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def keep_trying(
    attempt: Callable[[], Awaitable[T]],
    *,
    where: str,
    deadline_seconds: float | None,
    stop: asyncio.Event | None = None,
    retry_on: tuple[type[BaseException], ...] = (KafkaError, OSError),
    meanwhile: str = "retrying",
) -> T | None:
    """The result of the first *attempt* that does not raise one of *retry_on*.

    Gives up with :class:`BrokerUnreachableError` once *deadline_seconds* have
    passed (None: never), cancelling an attempt still under way; returns None
    as soon as *stop* is set, also mid-attempt. Each failed attempt is logged
    as a warning naming *where* and the error, ending in *meanwhile*.
    """
    failures: list[BaseException] = []
    try:
        async with asyncio.timeout(deadline_seconds) as limit:
            with quiet_bootstrap():
                return await _unless_stopped(
                    _attempts(attempt, where, retry_on, meanwhile, failures), stop
                )
    except TimeoutError:
        if not limit.expired():
            raise
        last = f": {failures[-1]}" if failures else ""
        raise BrokerUnreachableError(
            f"the broker at {where} did not answer within {deadline_seconds:.0f} s{last}"
        ) from None


async def connect_producer(
    settings: Settings,
    options: ProducerOptions,
    *,
    deadline_seconds: float | None,
    stop: asyncio.Event | None = None,
) -> Any | None:
    """A started producer (see :func:`new_producer`), retried as :func:`keep_trying`
    does; None when *stop* was set first."""
    assert settings.broker, "the broker is resolved before a producer is built"
    return await keep_trying(
        lambda: started(new_producer(settings, options)),
        where=",".join(bootstrap_servers(settings.broker)),
        deadline_seconds=deadline_seconds,
        stop=stop,
    )


async def send_all(producer: Any, messages: Iterable[Message]) -> int:
    """Send *messages* in order; return their count once the broker acknowledged each.

    Raises :class:`NotAcknowledgedError` when the producer refuses one or a
    delivery fails, after every message already sent has been settled, so the
    count of acknowledged ones it carries is exact.
    """
    deliveries: list[asyncio.Future[Any]] = []
    refused: KafkaError | None = None
    try:
        for topic, key, value in messages:
            deliveries.append(await producer.send(topic, value=value, key=key))
    except KafkaError as exc:
        refused = exc
    outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    error = failures[0] if failures else refused
    if error is not None:
        raise NotAcknowledgedError(len(outcomes) - len(failures), len(outcomes), error) from error
    return len(deliveries)


async def _attempts(
    attempt: Callable[[], Awaitable[T]],
    where: str,
    retry_on: tuple[type[BaseException], ...],
    meanwhile: str,
    failures: list[BaseException],
) -> T:
    number = 0
    while True:
        number += 1
        try:
            return await attempt()
        except retry_on as exc:
            failures.append(exc)
            log.warning(
                "broker %s not reachable (attempt %d: %s); %s", where, number, exc, meanwhile
            )
        await asyncio.sleep(min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * number))


async def _unless_stopped(work: Awaitable[T], stop: asyncio.Event | None) -> T | None:
    """*work*'s result, or None once *stop* is set first (then *work* is cancelled)."""
    if stop is None:
        return await work
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((working, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (working, stopping):
            task.cancel()  # nothing happens to one that is done
        await asyncio.gather(working, stopping, return_exceptions=True)
    if working.cancelled():
        return None
    return working.result()
