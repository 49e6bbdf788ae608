"""Sending on what a batch does not apply: dead letters and rerouted messages.

Neither may be lost, so publishing retries for as long as the broker refuses
for a passing reason (the agent waits, which is the right back-pressure), and
only what the broker acknowledged is counted (Processor.record_outputs).

A dead letter is the rejected message unchanged, the reason in headers; one
too large for any broker is cut to a prefix with its original size in a
header rather than dropped. A rerouted message goes to the partition its key
maps to with its key, value, headers and timestamp, plus headers naming where
it landed first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError

from streams.processor import DeadLetter, Output, Reroute

log = logging.getLogger(__name__)

Send = Callable[..., Awaitable[Awaitable[Any]]]

# Brokers refuse records over about 1 MB by default; beyond this a dead letter keeps
# a prefix (enough to identify the sender) and says how large the original was.
MAX_DEAD_LETTER_BYTES = 512 * 1024
KEPT_PREFIX_BYTES = 64 * 1024


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    message = letter.message
    headers = [
        ("error.reason", letter.rejection.reason.encode()),
        ("error.detail", letter.rejection.detail.encode("utf-8", "replace")[:4096]),
        ("origin.topic", letter.topic.encode()),
        ("origin.partition", str(message.partition).encode()),
        ("origin.offset", str(message.offset).encode()),
    ]
    if _too_large(message.value) or _too_large(message.key):
        headers.append(("error.truncated", b"true"))
        headers.append(("error.original_bytes", str(len(message.value or b"")).encode()))
    return headers


def _too_large(data: bytes | None) -> bool:
    return data is not None and len(data) > MAX_DEAD_LETTER_BYTES


def _cut(data: bytes | None) -> bytes | None:
    if data is not None and _too_large(data):
        return data[:KEPT_PREFIX_BYTES]
    return data


def reroute_headers(reroute: Reroute) -> list[tuple[str, bytes]]:
    message = reroute.message
    return [
        *message.headers,
        ("rerouted.from_partition", str(message.partition).encode()),
        ("rerouted.from_offset", str(message.offset).encode()),
    ]


def _record(dead_letter_topic: str, output: Output) -> tuple[Any, ...]:
    """The arguments of a producer send (topic, key, value, partition, timestamp, headers)."""
    message = output.message
    if isinstance(output, Reroute):
        return (
            output.topic,
            message.key,
            message.value,
            output.to_partition,
            message.timestamp,
            reroute_headers(output),
        )
    return (
        dead_letter_topic,
        _cut(message.key),
        _cut(message.value),
        None,
        None,
        dead_letter_headers(output),
    )


async def publish_outputs(
    send: Send, dead_letter_topic: str, outputs: Sequence[Output], *, retry_seconds: float = 1.0
) -> None:
    """Publish and wait until the broker has every one of them, retrying passing failures."""
    remaining = list(outputs)
    attempt = 0
    while remaining:
        attempt += 1
        failed: list[Output] = []
        errors: set[str] = set()
        sent: list[tuple[Output, Awaitable[Any]]] = []
        for output in remaining:
            try:
                future = await send(*_record(dead_letter_topic, output))
            except (KafkaError, ProducerSendError) as exc:
                failed.append(output)
                errors.add(type(exc).__name__)
            else:
                sent.append((output, future))
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        for (output, _), result in zip(sent, results, strict=True):
            if isinstance(result, KafkaError | ProducerSendError):
                failed.append(output)
                errors.add(type(result).__name__)
            elif isinstance(result, BaseException):
                raise result
        if not failed:
            return
        log.warning(
            "%d dead letters or rerouted messages not acknowledged (%s), attempt %d; retrying",
            len(failed),
            ", ".join(sorted(errors)),
            attempt,
        )
        remaining = failed
        await asyncio.sleep(min(30.0, retry_seconds * attempt))
