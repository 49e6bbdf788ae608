"""Puts the simulated sales floor on a Kafka broker, in real time.

Messages follow the contract exactly as a CRM would send them: keyed by
``manager_id``, compact JSON values, each type on its configured topic, and
acknowledged by all in-sync replicas before they count as published. The
floor's clock is the wall clock as measured at start plus monotonic time since,
so event time never runs backwards even if the system clock is adjusted.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from salespulse.kafka_client import (
    BrokerUnreachableError,
    NotAcknowledgedError,
    ProducerOptions,
    connect_producer,
    send_all,
)
from salespulse.settings import ConfigurationError, Settings
from salespulse.simulate.floor import DEFAULT_SPEED, Event, SalesFloor, topic_for
from salespulse.topics import bootstrap_servers

__all__ = ["BrokerUnavailableError", "bootstrap_servers", "encode", "publish"]

CONNECT_TIMEOUT_SECONDS = 30.0
TICK_SECONDS = 0.1
PROGRESS_EVERY_SECONDS = 10.0
PRODUCER = ProducerOptions(client_id="salespulse-simulator", linger_ms=5)


class BrokerUnavailableError(ConfigurationError):
    """The broker cannot be reached or stopped accepting events; meant for the operator."""


def encode(event: Event) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


async def publish(
    settings: Settings,
    *,
    rate: float,
    seed: int,
    speed: float = DEFAULT_SPEED,
    limit: int | None = None,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Publish the floor's events at about *rate* per second; return how many were acknowledged.

    Runs until *limit* events are published, *duration* seconds have passed or
    *stop* is set, whichever comes first. The broker must already be resolved
    in ``settings.broker``; one that does not answer within about 30 seconds
    raises :class:`BrokerUnavailableError`.
    """
    if settings.broker is None:
        raise ValueError(
            "no broker to publish to: set SALESPULSE_BROKER (kafka://host:port) "
            "or start the embedded broker first"
        )
    if not rate > 0:
        raise ValueError(f"rate must be a positive number of events per second, not {rate!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, not {limit!r}")
    servers = bootstrap_servers(settings.broker)
    floor = SalesFloor(settings, seed=seed, speed=speed)
    try:
        producer = await connect_producer(
            settings, PRODUCER, deadline_seconds=CONNECT_TIMEOUT_SECONDS, stop=stop
        )
    except BrokerUnreachableError as exc:
        raise BrokerUnavailableError(
            f"{exc}; is it running, and is SALESPULSE_BROKER right?"
        ) from None
    if producer is None:
        return 0
    published = 0
    started = time.monotonic()
    started_at = datetime.now(UTC)
    last = started
    credit = 0.0
    burst = max(rate, 1.0)  # after a stall, catch up at most one second's worth
    next_note = started + PROGRESS_EVERY_SECONDS
    try:
        while not (stop is not None and stop.is_set()):
            clock = time.monotonic()
            elapsed = clock - started
            if duration is not None and elapsed >= duration:
                break
            if limit is not None and published >= limit:
                break
            credit = min(burst, credit + (clock - last) * rate)
            last = clock
            wanted = int(credit)
            if limit is not None:
                wanted = min(wanted, limit - published)
            if wanted > 0:
                credit -= wanted
                events = floor.step(started_at + timedelta(seconds=elapsed), wanted)
                published += await _send(producer, settings, events, servers, published)
            if clock >= next_note:
                next_note += PROGRESS_EVERY_SECONDS
                print(
                    f"simulate: {published} events published "
                    f"({published / max(elapsed, 1e-9):.1f}/s), "
                    f"{floor.open_deals} deals open",
                    file=sys.stderr,
                    flush=True,
                )
            await _pause(stop, TICK_SECONDS)
    finally:
        await producer.stop()
    return published


async def _send(
    producer: Any, settings: Settings, events: list[Event], servers: list[str], before: int
) -> int:
    try:
        return await send_all(
            producer,
            (
                (
                    topic_for(event, settings),
                    str(event["manager_id"]).encode("utf-8"),
                    encode(event),
                )
                for event in events
            ),
        )
    except NotAcknowledgedError as exc:
        raise BrokerUnavailableError(
            f"publishing to {','.join(servers)} failed after {before + exc.acknowledged} events: "
            f"{exc.error}"
        ) from exc


async def _pause(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep, waking early when *stop* is set; True when it is."""
    if stop is None:
        await asyncio.sleep(seconds)
        return False
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
