"""Dead letters are never lost: passing broker failures are retried, giants are cut."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from streams.intake import Rejection
from streams.outputs import KEPT_PREFIX_BYTES, publish_outputs
from streams.processor import DeadLetter, RawMessage


def letter(value: bytes, offset: int = 7) -> DeadLetter:
    return DeadLetter(
        "crm.calls", RawMessage(2, offset, b"m-1", value), Rejection("invalid_json", "oops")
    )


class FlakyBroker:
    """Refuses the first *failures* sends, then acknowledges everything."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.acknowledged: list[tuple[Any, ...]] = []

    async def send(self, *args: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failures > 0:
            self.failures -= 1
            future.set_exception(KafkaTimeoutError())
        else:
            self.acknowledged.append(args)
            future.set_result(None)
        return future


async def test_a_passing_failure_is_retried_until_acknowledged() -> None:
    broker = FlakyBroker(failures=3)
    await publish_outputs(broker.send, "crm.dead-letter", [letter(b"{x")], retry_seconds=0)
    assert len(broker.acknowledged) == 1
    topic, key, value, _, _, headers = broker.acknowledged[0]
    assert (topic, key, value) == ("crm.dead-letter", b"m-1", b"{x")
    assert dict(headers)["origin.offset"] == b"7"


async def test_a_message_too_large_for_any_broker_is_cut_and_says_so() -> None:
    broker = FlakyBroker(failures=0)
    giant = b"x" * (2 * 1024 * 1024)
    await publish_outputs(broker.send, "crm.dead-letter", [letter(giant)])
    _, _, value, _, _, headers = broker.acknowledged[0]
    assert value == giant[:KEPT_PREFIX_BYTES]
    assert dict(headers)["error.truncated"] == b"true"
    assert dict(headers)["error.original_bytes"] == str(len(giant)).encode()


async def test_a_programming_error_is_not_retried_forever() -> None:
    async def broken(*args: Any) -> asyncio.Future[None]:
        raise TypeError("bad call")

    with pytest.raises(TypeError):
        await publish_outputs(broken, "crm.dead-letter", [letter(b"{x")])
