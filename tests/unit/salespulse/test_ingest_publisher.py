"""The gateway's producer against the embedded broker, which refuses idempotent producers:
the refusal is one warning with its reason, not also the client library's ERROR."""

from __future__ import annotations

import logging

import pytest

from salespulse.broker import EmbeddedBroker
from salespulse.ingest.publisher import KafkaPublisher
from salespulse.settings import Settings
from tests.support.ingest import ingest_settings


async def test_an_embedded_broker_refusing_idempotence_is_one_warning(
    broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    publisher = KafkaPublisher(Settings(broker=broker.url), ingest_settings())
    await publisher.start()
    try:
        assert await publisher.wait_connected(within=60)
    finally:
        await publisher.stop()
    assert publisher.idempotent is False
    shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in shown] == ["WARNING"], [r.getMessage() for r in shown]
    message = shown[0].getMessage()
    assert "InitProducerId answered UnknownError" in message
    assert "without idempotence" in message
