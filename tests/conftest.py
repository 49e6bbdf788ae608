from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from salespulse.broker import EmbeddedBroker
from tests.support.processes import WorkerProcess

COMPANY_TOML = """
timezone = "Europe/Berlin"

[pipelines.default]
stages = ["lead", "qualified", "contacted", "needs_analysis", "demo",
          "proposal", "negotiation", "contract", "won"]
won = ["won"]
lost = ["lost"]

[managers.m-1]
name = "Anna Petrova"
team = "north"

[managers.m-2]
name = "Boris Ivanov"
team = "north"

[managers.m-3]
name = "Chloe Martin"
team = "south"
"""


@pytest.fixture
def company_config(tmp_path: Path) -> Path:
    path = tmp_path / "salespulse.toml"
    path.write_text(COMPANY_TOML)
    return path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh embedded broker per test, stopped by its process id afterwards."""
    with EmbeddedBroker(log=tmp_path / "broker.log") as running:
        yield running


@pytest.fixture
def worker(broker: EmbeddedBroker, company_config: Path, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(broker.url, company_config, tmp_path)
    yield process
    if process.process is not None and process.process.poll() is None:
        process.stop()
