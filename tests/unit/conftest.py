"""The state engine the unit tests run on: ``SALESPULSE_STATE_ENGINE=rocksdb`` runs the
items, store, state and analytics tests again with resting items in RocksDB."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from streams import state


@pytest.fixture(autouse=True)
def state_engine() -> Iterator[str]:
    name = os.environ.get("SALESPULSE_STATE_ENGINE", "memory")
    state.use_engine(name)
    yield name
    state.use_engine("memory")
