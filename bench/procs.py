"""Child processes of the benchmarks: the salespulse worker and the baseline consumers.

Everything started here is bounded: every wait has a deadline, and every
child is stopped (SIGTERM, then SIGKILL) by the process id it was given.
All network traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salespulse.broker import free_port

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def rss_mib(pid: int) -> float:
    """Resident set size of *pid* (VmRSS of /proc/<pid>/status) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time *pid* has used so far (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def http_get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


def sum_samples(text: bytes, metric: bytes, must_contain: bytes = b"") -> float:
    """Sum of every sample of *metric* in an exposition, by a plain line scan.

    The prometheus_client parser needs seconds for the hundreds of thousands
    of series a large company exports; the benchmark must not steal that CPU
    from the worker it measures.
    """
    prefix = metric + b"{"
    total = 0.0
    for line in text.split(b"\n"):
        if line.startswith(prefix) and must_contain in line:
            total += float(line.rsplit(b" ", 1)[1])
    return total


@dataclass
class Scrape:
    started: float  # perf_counter when the request was sent
    seconds: float  # until the whole body was read
    body: bytes


class Worker:
    """``salespulse worker`` as a child process, configured as an operator would."""

    def __init__(
        self,
        broker_url: str,
        config: Path,
        workdir: Path,
        *,
        app_id: str,
        partitions: int,
        extra_env: dict[str, str] | None = None,
    ):
        self.broker_url = broker_url
        self.config = config
        self.workdir = workdir
        self.app_id = app_id
        self.partitions = partitions
        self.extra_env = extra_env or {}
        self.port = free_port(HOST)
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / f"worker-{self.app_id}-{self.starts}.log"

    def start(self) -> Worker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
        env.update(
            SALESPULSE_BROKER=self.broker_url,
            SALESPULSE_CONFIG=str(self.config),
            SALESPULSE_METRICS_PORT=str(self.port),
            SALESPULSE_METRICS_HOST=HOST,
            SALESPULSE_APP_ID=self.app_id,
            SALESPULSE_PARTITIONS=str(self.partitions),
            # What `salespulse worker` uses with its embedded broker, which makes a
            # joining group wait out the session timeout.
            SALESPULSE_SESSION_TIMEOUT_SECONDS="6",
            SALESPULSE_HEARTBEAT_INTERVAL_SECONDS="1",
            **self.extra_env,
        )
        self.starts += 1
        with open(self.log_path, "wb") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "salespulse", "worker"],
                cwd=self.workdir,  # Faust puts its data directory into the working directory
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.tail()}")

    def wait_ready(self, timeout: float, interval: float = 0.02) -> float:
        """Poll /readyz until it answers 200; seconds from process start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            try:
                status, _ = http_get(self.port, "/readyz", timeout=5)
            except OSError:
                status = 0
            if status == 200:
                return time.perf_counter() - self.started_at
            time.sleep(interval)
        raise TimeoutError(f"worker not ready within {timeout:.0f}s:\n{self.tail()}")

    def scrape(self) -> Scrape:
        started = time.perf_counter()
        status, body = http_get(self.port, "/metrics", timeout=120)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return Scrape(started, time.perf_counter() - started, body)

    def events_total(self) -> tuple[float, Scrape]:
        scrape = self.scrape()
        return sum_samples(scrape.body, b"salespulse_events_total"), scrape

    def stop(self, timeout: float = 60.0) -> int | None:
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Child:
    """``python -m module args`` as a child process that reports by writing a JSON file."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], workdir: Path, name: str):
        self.module = module
        self.result = workdir / f"{name}.json"
        self.log = workdir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env={**os.environ, "BENCH_DATADIR": str(workdir / f"{name}-data"), **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_result(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not self.result.exists():
            if self.process.poll() is not None and not self.result.exists():
                text = self.log.read_text(errors="replace")
                raise RuntimeError(
                    f"{self.module} exited with {self.process.returncode}:\n"
                    f"{text[:2000]}\n...\n{text[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.module} did not finish within {timeout:.0f}s")
            time.sleep(0.05)
        data: dict[str, Any] = json.loads(self.result.read_text())
        return data

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
