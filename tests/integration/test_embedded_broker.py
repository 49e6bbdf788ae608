"""The embedded broker lives exactly as long as the command that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from salespulse.broker import free_port
from tests.support.polling import wait_for
from tests.support.scrape import ready

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def start(args: list[str], tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env.update(
        SALESPULSE_METRICS_PORT=str(port),
        SALESPULSE_METRICS_HOST="127.0.0.1",
        SALESPULSE_SESSION_TIMEOUT_SECONDS="6",
        SALESPULSE_HEARTBEAT_INTERVAL_SECONDS="1",
    )
    log = open(tmp_path / f"{args[0]}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "salespulse", *args], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    return process


def descendants_named(pid: int, name: str) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        for child in children(current) if alive(current) else []:
            queue.append(child)
            if command_name(child).startswith(name):
                found.append(child)
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_worker_without_broker_never_leaves_the_embedded_broker_behind(
    tmp_path: Path, sig: signal.Signals
) -> None:
    port = free_port()
    worker = start(["worker"], tmp_path, port)
    try:
        wait_for(lambda: ready(port), timeout=90, what="worker with embedded broker ready")
        (broker,) = descendants_named(worker.pid, "tansu")
        worker.send_signal(sig)
        worker.wait(60)
        if sig is not signal.SIGKILL:
            assert worker.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
        wait_for(
            lambda: not alive(broker), timeout=15, what=f"broker {broker} gone after {sig.name}"
        )
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_demo_serves_per_manager_numbers_and_stops_everything(tmp_path: Path) -> None:
    port, wall = free_port(), free_port()
    demo = start(
        ["demo", "--metrics-port", str(port), "--wall-port", str(wall), "--rate", "50"],
        tmp_path,
        port,
    )
    try:
        from tests.support.scrape import scrape, total

        def busy_managers() -> int:
            samples = scrape(port)
            managers = {
                dict(series)["manager"]
                for (name, series), value in samples.items()
                if name == "salespulse_calls_total" and value > 0
            }
            return len(managers) if total(samples, "salespulse_deals_created_total") > 0 else 0

        assert wait_for(busy_managers, timeout=60, what="per-manager numbers on /metrics") >= 5
        spawned = descendants_named(demo.pid, "tansu") + [
            pid for pid in children(demo.pid) if command_name(pid).startswith("python")
        ]
        assert len(spawned) == 3  # the broker, the simulator and the wall
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
        assert demo.returncode == 0, (tmp_path / "demo.log").read_text()[-2000:]
        wait_for(
            lambda: not any(alive(pid) for pid in spawned), timeout=15, what="demo children gone"
        )
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
