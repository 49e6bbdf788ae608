"""Puts converted events on the broker, in order, with a progress bar.

Messages follow the contract as a live CRM sends them: keyed by
``manager_id`` (so each manager's history stays in one partition, in the
order given), compact JSON, each type on its configured topic, acknowledged
by all in-sync replicas (``acks=all``) before they count as published. The
source topics are created with the configured partition count first when
they do not exist, exactly as a worker would, so an import into a fresh
broker does not leave a broker-default topic layout behind.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from salespulse.importer.convert import OutEvent
from salespulse.kafka_client import (
    BrokerUnreachableError,
    NotAcknowledgedError,
    ProducerOptions,
    connect_producer,
    send_all,
)
from salespulse.settings import ConfigurationError, Settings
from salespulse.topics import BrokerUnavailableError as TopicsUnavailableError
from salespulse.topics import bootstrap_servers, ensure_topics

PRODUCER = ProducerOptions(client_id="salespulse-importer", linger_ms=20)
WINDOW = 2000  # events in flight before waiting for their acknowledgements
CONNECT_TIMEOUT_SECONDS = 30.0


class PublishError(ConfigurationError):
    """The broker cannot be reached or stopped accepting events; meant for the operator."""

    def __init__(self, message: str, published: int):
        super().__init__(message)
        self.published = published


class Progress:
    """A one-line progress bar on a text stream: share done, count, rate and ETA.

    On a terminal the line is rewritten in place with ``\\r`` (at most ten times
    a second); into a file or pipe it writes a plain line every
    ``every_seconds`` instead, so a CI log is not flooded with carriage returns.
    """

    WIDTH = 30

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        *,
        label: str = "events",
        tty: bool | None = None,
        every_seconds: float = 5.0,
        clock: Any = time.monotonic,
    ):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = 0.1 if self.tty else every_seconds
        self.clock = clock
        self.started = clock()
        self.last_shown = float("-inf")
        self.done = 0

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        share = done / self.total if self.total else 1.0
        filled = round(self.WIDTH * share)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        if done >= self.total:
            eta = f"done in {_duration(elapsed)}"
        elif rate > 0:
            eta = f"ETA {_duration((self.total - done) / rate)}"
        else:
            eta = "ETA --"
        return f"[{bar}] {share:6.1%}  {done:,}/{self.total:,} {self.label}  {rate:,.0f}/s  {eta}"

    def update(self, done: int) -> None:
        self.done = done
        if done >= self.total:
            return  # finish() shows the last line, once
        now = self.clock()
        if now - self.last_shown < self.every:
            return
        self.last_shown = now
        self._show(self.line(done, now))

    def finish(self) -> None:
        self._show(self.line(self.done, self.clock()))
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, text: str) -> None:
        if self.tty:
            self.stream.write(f"\r{text}\x1b[K")
        else:
            self.stream.write(f"{text}\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def topic_of(event: OutEvent, settings: Settings) -> str:
    return {
        "deals": settings.topic_deals,
        "tasks": settings.topic_tasks,
        "calls": settings.topic_calls,
    }[event.family]


async def publish(
    settings: Settings, events: Sequence[OutEvent], progress: Progress | None = None
) -> int:
    """Publish *events* in the order given; return how many the broker acknowledged.

    Raises :class:`PublishError` (with the count acknowledged so far) when the
    broker cannot be reached or refuses events. Publishing again is safe: the
    event ids are the same, so the processor counts repeats as duplicates.
    """
    if settings.broker is None:
        raise ConfigurationError(
            "import needs a broker: --broker or SALESPULSE_BROKER (kafka://host:port)"
        )
    servers = bootstrap_servers(settings.broker)
    where = ",".join(servers)
    try:
        await ensure_topics(settings.model_copy(update={"startup_timeout_seconds": 30.0}))
    except TopicsUnavailableError as exc:
        raise PublishError(str(exc), 0) from None
    try:
        producer = await connect_producer(
            settings, PRODUCER, deadline_seconds=CONNECT_TIMEOUT_SECONDS
        )
    except BrokerUnreachableError as exc:
        raise PublishError(str(exc), 0) from None
    assert producer is not None, "without a stop event only the deadline ends the wait"
    published = 0
    try:
        for start in range(0, len(events), WINDOW):
            chunk = events[start : start + WINDOW]
            try:
                await send_all(
                    producer,
                    ((topic_of(event, settings), event.key, event.value) for event in chunk),
                )
            except NotAcknowledgedError as exc:
                published += exc.acknowledged
                raise PublishError(
                    f"publishing to {where} failed after {published:,} acknowledged events: "
                    f"{exc.error}; importing again is safe (repeated events are duplicates)",
                    published,
                ) from exc
            published += len(chunk)
            if progress is not None:
                progress.update(published)
    finally:
        await producer.stop()
        if progress is not None:
            progress.finish()
    return published
