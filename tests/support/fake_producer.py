"""A stand-in for aiokafka's producer, for tests of what publishers send.

Patched in where salespulse.kafka_client builds producers; it acknowledges
every send at once and keeps what was sent, for tests that check content
rather than delivery (those run against the embedded broker).
"""

from __future__ import annotations

import asyncio
from typing import Any


class FakeProducer:
    instances: list[FakeProducer] = []  # noqa: RUF012 - shared record of the test

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.stopped = False
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        pass

    async def send(self, topic: str, *, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def stop(self) -> None:
        self.stopped = True
