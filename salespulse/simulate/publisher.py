"""Puts the simulated sales floor on a Kafka broker, in real time.

Messages follow the contract exactly as a CRM would send them: keyed by
``manager_id``, compact JSON values, each type on its configured topic, and
acknowledged by all in-sync replicas before they count as published. The
floor's clock is the wall clock as measured at start plus monotonic time since,
so event time never runs backwards even if the system clock is adjusted.

Two ways to run: :func:`publish` puts a compressed floor on the broker at a
fixed rate (a load generator, and a floor that shows closed deals within
minutes); :func:`publish_with_history` first backfills the demo floor's
recent past, as the importer backfills a CRM export (topics created with the
configured partitions, ``acks=all``, chunks acknowledged before the next),
and then lets the same floor carry on at a real office's pace.
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
from salespulse.simulate.history import (
    HISTORY_DAYS,
    PER_WORKDAY,
    demo_floor,
    demo_pace,
    history,
    step,
)
from salespulse.topics import BrokerUnavailableError as TopicsUnavailableError
from salespulse.topics import bootstrap_servers, ensure_topics

__all__ = [
    "BrokerUnavailableError",
    "bootstrap_servers",
    "encode",
    "publish",
    "publish_with_history",
]

CONNECT_TIMEOUT_SECONDS = 30.0
TICK_SECONDS = 0.1
PROGRESS_EVERY_SECONDS = 10.0
PRODUCER = ProducerOptions(client_id="salespulse-simulator", linger_ms=5)
HISTORY_CHUNK = 2000  # events in flight before waiting for their acknowledgements
LIVE_TICK_SECONDS = 1.0
LIVE_NOTE_EVERY_SECONDS = 60.0


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


async def publish_with_history(
    settings: Settings,
    *,
    seed: int,
    days: float = HISTORY_DAYS,
    per_workday: float = PER_WORKDAY,
    stop: asyncio.Event | None = None,
) -> int:
    """Publish the demo floor's last *days* of event time, then carry on live until *stop*.

    Returns how many events were acknowledged. *per_workday* is the new work
    (deals, calls, ad-hoc tasks) per manager and working day; the moves, tasks
    and completions it brings come on top, on their own schedule.
    """
    if settings.broker is None:
        raise ValueError("no broker to publish to: resolve settings.broker first")
    servers = bootstrap_servers(settings.broker)
    floor = demo_floor(settings, seed)
    pace = demo_pace(floor, settings, per_workday)
    try:
        await ensure_topics(settings.model_copy(update={"startup_timeout_seconds": 30.0}))
        producer = await connect_producer(
            settings, PRODUCER, deadline_seconds=CONNECT_TIMEOUT_SECONDS, stop=stop
        )
    except (BrokerUnreachableError, TopicsUnavailableError) as exc:
        raise BrokerUnavailableError(
            f"{exc}; is it running, and is SALESPULSE_BROKER right?"
        ) from None
    if producer is None:
        return 0
    started = time.monotonic()
    started_at = datetime.now(UTC)
    published = 0
    try:
        past = history(floor, pace, end=started_at, days=days)
        for start in range(0, len(past), HISTORY_CHUNK):
            if stop is not None and stop.is_set():
                return published
            chunk = past[start : start + HISTORY_CHUNK]
            published += await _send(producer, settings, chunk, servers, published)
        took = time.monotonic() - started
        print(
            f"simulate: {days:g} days of history published: {published} events in {took:.1f}s; "
            f"{len(floor.managers)} managers carry on at a real floor's pace "
            f"(about {pace.per_second * 3600:.0f} new events an office hour besides planned work)",
            file=sys.stderr,
            flush=True,
        )
        last = time.monotonic()
        next_note = last + LIVE_NOTE_EVERY_SECONDS
        while not await _pause(stop, LIVE_TICK_SECONDS):
            clock = time.monotonic()
            now = started_at + timedelta(seconds=clock - started)
            events = step(floor, pace, now, clock - last)
            last = clock
            if events:
                published += await _send(producer, settings, events, servers, published)
            if clock >= next_note:
                next_note += LIVE_NOTE_EVERY_SECONDS
                print(
                    f"simulate: {published} events published, {floor.open_deals} deals open",
                    file=sys.stderr,
                    flush=True,
                )
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
