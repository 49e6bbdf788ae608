"""Timers caught by a shutdown end quietly; the same failure while running is not hidden."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.exceptions import ProducerSendError

from streams.app import _quiet_when_stopping


async def fail_inside(app: Any) -> None:
    async with _quiet_when_stopping(app, "a write"):
        raise ProducerSendError("Error while sending: ProducerClosed()")


def test_a_write_cut_short_by_the_shutdown_does_not_crash_the_worker() -> None:
    asyncio.run(fail_inside(SimpleNamespace(should_stop=True)))


def test_the_same_failure_while_running_is_raised() -> None:
    with pytest.raises(ProducerSendError):
        asyncio.run(fail_inside(SimpleNamespace(should_stop=False)))
