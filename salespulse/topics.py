"""Making sure the CRM and dead-letter topics exist before consuming.

Faust creates its own changelog topics, but not the source topics; a worker
that starts before any producer must not fail, so it creates them with the
configured partition count. Broker trouble at start gets a clear message and
retries, not a traceback: one line per attempt, ours (see quiet_bootstrap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from salespulse.kafka_security import client_options
from salespulse.settings import Settings

log = logging.getLogger(__name__)


class BrokerUnavailableError(RuntimeError):
    """The broker did not answer within the start-up deadline."""


def bootstrap_servers(broker: str) -> list[str]:
    """``host:port`` entries of a ``kafka://h1:p1;h2:p2`` (or comma separated) broker URL."""
    hosts = [
        part.strip().removeprefix("kafka://")
        for part in re.split(r"[;,]", broker.strip())
        if part.strip()
    ]
    hosts = [host for host in hosts if host]
    if not hosts:
        raise ValueError(f"broker {broker!r} names no host")
    return hosts


async def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create the CRM and dead-letter topics that do not exist; returns each one's
    partition count as the broker reports it."""
    assert settings.broker, "the broker is resolved before topics are created"
    deadline_seconds = settings.startup_timeout_seconds
    wanted = [*settings.source_topics, settings.topic_dead_letter]
    deadline = time.monotonic() + deadline_seconds
    with quiet_bootstrap():
        return await _create_missing(settings, wanted, deadline, deadline_seconds)


async def _create_missing(
    settings: Settings, wanted: list[str], deadline: float, deadline_seconds: float
) -> dict[str, int]:
    assert settings.broker
    attempt = 0
    while True:
        attempt += 1
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers(settings.broker),
            request_timeout_ms=10000,
            **client_options(settings),
        )
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):  # another worker was first
                    await admin.create_topics(
                        [
                            NewTopic(name, settings.partitions, settings.replication_factor)
                            for name in missing
                        ]
                    )
            described = await admin.describe_topics(wanted)
            return {topic["topic"]: len(topic["partitions"]) for topic in described}
        except (KafkaError, OSError) as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailableError(
                    f"broker {settings.broker} did not answer for {deadline_seconds:.0f}s: {exc}"
                ) from None
            log.warning(
                "broker %s not reachable yet (attempt %d: %s); retrying",
                settings.broker,
                attempt,
                exc,
            )
            await asyncio.sleep(min(5.0, 0.5 * attempt))
        finally:
            await admin.close()


@contextlib.contextmanager
def dropping_logs(logger_name: str, dropped: Callable[[str], bool]) -> Iterator[None]:
    """While inside, leave out the records of *logger_name* whose message *dropped*
    matches: a client library's line that one of ours already says better. A filter
    on a logger sees only that logger's own records, not its children's."""
    log = logging.getLogger(logger_name)

    def keep(record: logging.LogRecord) -> bool:
        return not dropped(record.getMessage())

    log.addFilter(keep)
    try:
        yield
    finally:
        log.removeFilter(keep)


def quiet_bootstrap() -> contextlib.AbstractContextManager[None]:
    """While a start-up loop retries a broker, its one warning per attempt stands in for
    the client library's error per bootstrap server and attempt, which says less and
    would make two lines of each attempt (aiokafka's client logs it as "aiokafka")."""
    return dropping_logs("aiokafka", lambda message: message.startswith("Unable connect to"))


def partition_mismatch(settings: Settings, counts: dict[str, int]) -> str | None:
    """Why a worker must not consume these topics, or None.

    The worker checks that each message sits in the partition its key maps to
    (schemas.partitioning), which depends on the partition count; its state
    table has ``partitions`` partitions too. So every CRM topic must have
    exactly that many.
    """
    wrong = {
        topic: counts[topic]
        for topic in settings.source_topics
        if topic in counts and counts[topic] != settings.partitions
    }
    if not wrong:
        return None
    found = ", ".join(f"{topic} has {count}" for topic, count in wrong.items())
    return (
        f"the CRM topics must have partitions = {settings.partitions} partitions, but {found}; "
        "set partitions (SALESPULSE_PARTITIONS) to the topics' partition count, "
        "the same for every CRM topic"
    )
