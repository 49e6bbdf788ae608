"""The stalled-broker scenario of the gateway, again and again under CPU load.

Not part of the default run (``-m "not stress"``); run it with

    ./dev test -m stress tests/integration/test_ingest_stress.py -s

``SALESPULSE_STRESS_ITERATIONS`` (default 50) sets how many fresh brokers it
goes through; each busy-loop process of ``SALESPULSE_STRESS_LOAD`` (default:
one per core) keeps a core busy meanwhile. It prints how many iterations
passed, or at which one the first failure came and how long that took. It is
how a rare loss (1 run in 40-90 under load) was found to be the reader's
fault, not the gateway's: see tests.support.kafka.seek_to_start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from salespulse.broker import EmbeddedBroker
from tests.integration.test_ingest import stall_the_broker_under_two_gateways

# As long as its iterations take (about 5 s each), not the suite's 300 s per test.
pytestmark = [pytest.mark.integration, pytest.mark.stress, pytest.mark.timeout(0)]


@pytest.fixture
def cpu_load() -> Iterator[int]:
    count = int(os.environ.get("SALESPULSE_STRESS_LOAD", os.cpu_count() or 1))
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield count
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def test_the_stalled_broker_scenario_passes_every_time_under_load(
    tmp_path: Path, cpu_load: int, capsys: pytest.CaptureFixture[str]
) -> None:
    iterations = int(os.environ.get("SALESPULSE_STRESS_ITERATIONS", "50"))
    started = time.monotonic()
    for n in range(1, iterations + 1):
        with EmbeddedBroker(log=tmp_path / f"broker-{n}.log") as broker:
            try:
                stall_the_broker_under_two_gateways(broker)
            except AssertionError as failure:
                with capsys.disabled():
                    print(
                        f"\nstress: failed at iteration {n} of {iterations} after "
                        f"{time.monotonic() - started:.0f} s ({cpu_load} cores kept busy)"
                    )
                raise AssertionError(f"iteration {n}: {failure}") from failure
    with capsys.disabled():
        print(
            f"\nstress: {iterations} iterations passed in {time.monotonic() - started:.0f} s "
            f"({cpu_load} cores kept busy)"
        )
